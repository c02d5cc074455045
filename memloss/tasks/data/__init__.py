"""The data layer: where data sets live, downloading with verification, and readers for
each real format (IDX, text corpora, CoNLL, SemEval TSV, Pang & Lee, word2vec) that fail
with a :class:`DataError` naming the file and the expected format.
"""
from .conll import Sentence, iob1_to_iob2, read_conll
from .errors import DataError
from .idx import read_idx, write_idx
from .sentiment import Example, Review, read_scale_data, read_semeval
from .store import (DATASETS, ENV_VAR, Dataset, FetchError, RemoteFile, data_dir, data_path,
                    fetch, missing_files, verify_file)
from .text import EOS, PAD, UNK, Vocab, read_lines
from .word2vec import read_word2vec, write_word2vec

__all__ = [
    "DataError", "FetchError", "DATASETS", "ENV_VAR", "Dataset", "RemoteFile", "data_dir",
    "data_path", "fetch", "missing_files", "verify_file",
    "read_idx", "write_idx", "read_lines", "Vocab", "EOS", "UNK", "PAD",
    "Sentence", "read_conll", "iob1_to_iob2", "Example", "Review", "read_semeval",
    "read_scale_data", "read_word2vec", "write_word2vec",
]
