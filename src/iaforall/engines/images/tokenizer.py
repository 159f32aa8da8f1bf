"""CLIP's tokenizer (what every Stable Diffusion text encoder reads), with the `tokenizers`
library: from the folder's `tokenizer.json` when it has one, else built from CLIP's
`vocab.json` and `merges.txt` as transformers' fast CLIP tokenizer is (lower case, CLIP's word
split, byte-level BPE with `</w>` at word ends, start and end tokens around the text)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

LENGTH = 77  # CLIP's context: every SD text encoder reads 77 tokens
START, END = "<|startoftext|>", "<|endoftext|>"
# CLIP's own word split: contractions, letters, single digits, runs of other symbols.
WORDS = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


class ClipTokenizer:
    def __init__(self, folder: Path) -> None:
        whole = folder / "tokenizer.json"
        if whole.is_file():
            self.tokenizer = Tokenizer.from_file(str(whole))
        else:
            self.tokenizer = _built(folder / "vocab.json", folder / "merges.txt")
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        end = self.tokenizer.token_to_id(END)
        if end is None:
            raise ValueError(f"the tokenizer has no {END} token")
        self.end = end
        self.pad = _pad_id(self.tokenizer, folder / "special_tokens_map.json", end)

    def ids(self, text: str) -> NDArray[np.int64]:
        """The text's LENGTH token ids: start, the text (cut to fit), end, then padding."""
        ids = list(self.tokenizer.encode(text).ids)[:LENGTH]
        if len(ids) == LENGTH and ids[-1] != self.end:
            ids[-1] = self.end  # cut: the end token stays last, as CLIP was trained
        ids += [self.pad] * (LENGTH - len(ids))
        return np.asarray([ids], dtype=np.int64)


def _built(vocab: Path, merges: Path) -> Tokenizer:
    bpe = models.BPE.from_file(str(vocab), str(merges), end_of_word_suffix="</w>", unk_token=END)
    tokenizer = Tokenizer(bpe)
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(WORDS), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    start, end = tokenizer.token_to_id(START), tokenizer.token_to_id(END)
    if start is None or end is None:
        raise ValueError(f"the vocabulary has no {START} or {END} token")
    tokenizer.post_processor = processors.RobertaProcessing(
        (END, end), (START, start), add_prefix_space=False, trim_offsets=False
    )
    return tokenizer


def _pad_id(tokenizer: Tokenizer, special: Path, default: int) -> int:
    """The padding token (SD 1.x pads with the end token, SD 2.x with "!")."""
    if not special.is_file():
        return default
    pad = json.loads(special.read_text()).get("pad_token")
    if isinstance(pad, dict):
        pad = pad.get("content")
    found = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
    return default if found is None else found
