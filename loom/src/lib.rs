//! Nothing here: the model checks are in `tests/` and need `--cfg loom`.
