"""Command line: `winnow` (or `python -m scoring`)
`{score,suspects,decide,export,sweep,map,list,import} ...`.

Bad input prints one message on stderr and exits 2; the last stdout line of `score` is the
run folder (of `export`, the path written; of `sweep`, its trials file), so scripts and the
app's job runner can pick it up. Summaries and tables for people go to stderr.

`score` and `sweep` also take `--config FILE`: the typed config as JSON (`ScoreConfig.to_dict`,
`SweepConfig.to_dict`), which is how the app's jobs receive theirs (scoring/jobs.py); the flags
that would build the config are then refused. Heavy modules load inside each command, after
the arguments were checked, so a typo is answered at once.

One module per command (its flags and help in `add_parser`, its work in `run`); the flags
several commands share live once in `common`; `main` assembles the parser and dispatches.
"""

import os

# Before torch loads: PyTorch's default OpenMP spin-wait made training 4-7x slower here as
# soon as another process was busy (DESIGN.md, Jobs). Here rather than in `main` so that any
# import of the CLI sets it, as importing `scoring.__main__` always did.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
