"""The CNN space with a decoder that refuses every genome whose hash is odd (tests only)."""

from __future__ import annotations

from nas.core.space import genome_hash
from search_spaces.cnn import CnnSpace


class HalfBrokenCnnSpace(CnnSpace):
    name = "cnn"

    def build(self, genome, task):
        if int(genome_hash(self, genome), 16) % 2:
            raise ValueError("injected build failure")
        return super().build(genome, task)


SPACE = HalfBrokenCnnSpace()
