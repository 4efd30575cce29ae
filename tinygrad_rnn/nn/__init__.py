"""Modules: containers of parameters, feed-forward layers, recurrent cells and sequence layers."""
from . import init
from .cells import GRUCell, LSTMCell, RNNCell, gru_step, lstm_step, rnn_step
from .layers import Dropout, Embedding, Linear, Sequential
from .module import Module, ModuleList, Parameter
from .recurrent import GRU, LSTM, RNN, LastOutput, Recurrent, check_cell

__all__ = [
    "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell", "Dropout", "Embedding", "Linear",
    "init", "LastOutput", "Module", "ModuleList", "Parameter", "Recurrent", "Sequential", "check_cell", "gru_step", "lstm_step", "rnn_step",
]
