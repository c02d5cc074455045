"""Drop-ins for ``torch.nn.LSTM``, ``torch.nn.GRU`` and ``torch.nn.RNN`` that take a
``scheme=`` (docs/migrating.md maps Keras, AWD-LSTM, haste and torch.nn options to schemes)."""
from .rnn import GRU, LSTM, RNN, RNNBase, torch_scheme

__all__ = ["LSTM", "GRU", "RNN", "RNNBase", "torch_scheme"]
