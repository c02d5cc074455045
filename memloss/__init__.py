"""memloss: benchmark and analysis toolkit for memory loss in regularized recurrent networks."""
__version__ = "0.1.0"
__all__ = ["__version__"]
