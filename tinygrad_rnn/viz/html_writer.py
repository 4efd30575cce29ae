"""placeholder"""
__all__ = ["HTMLGraph", "to_html"]
class HTMLGraph: pass
def to_html(*a, **k): raise NotImplementedError
