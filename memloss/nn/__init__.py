"""Drop-ins for ``torch.nn.LSTM``, ``torch.nn.GRU`` and ``torch.nn.RNN`` and their one-step
cells ``LSTMCell``, ``GRUCell`` and ``RNNCell``, each with a ``scheme=`` (docs/migrating.md
maps Keras, AWD-LSTM, haste and torch.nn options to schemes)."""
from .cells import GRUCell, LSTMCell, RNNCell, RNNCellBase
from .rnn import GRU, LSTM, RNN, RNNBase, torch_scheme

__all__ = ["LSTM", "GRU", "RNN", "RNNBase", "LSTMCell", "GRUCell", "RNNCell", "RNNCellBase",
           "torch_scheme"]
