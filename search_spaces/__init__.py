"""Search spaces: one module per space, each exposing ``SPACE`` (see :mod:`nas.core.space`)."""
