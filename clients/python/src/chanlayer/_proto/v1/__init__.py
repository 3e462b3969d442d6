"""Generated stubs of ``chanlayer.v1`` (``proto/chanlayer/v1``). Regenerate with scripts/gen_protos.py."""
