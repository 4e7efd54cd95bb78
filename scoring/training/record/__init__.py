"""Recording the user's own training: `Recorder` and the parts it delegates to.

Users import `scoring.record.Recorder` (or this package's `Recorder`); each part owns one
job and imports its siblings directly, never this package:

- `recorder`: `Recorder`, the public calls in their order, the run and epoch counters;
- `examples`: the examples a recording is of, checked once (`Examples`: ids to rows,
  held-out ids);
- `inputs`: checks of single user-given values (numbers, ids, label names, a data source,
  display inputs);
- `buffer`: buffering logged logits by row between flushes;
- `epochs`: epoch statistics (loss, margins, probability of the given label) and softmax;
- `evidence`: `end_run`'s held-out logits and penultimate features, checked;
- `scratch`: the scratch folder of a recording in progress and its file names;
- `ddp`: `torch.distributed`'s side (rank, a shared run key, `end_epoch`'s coverage
  all-reduce, `finish`'s handshake);
- `merge`: the ranks' flushes merged by id, and each rank's `rank.json`;
- `assemble`: one run's arrays (`runs/run_<r>.npz`) from the merged flushes;
- `definitions`: which definition each score used (EL2N's pass, whose embeddings the
  label-free scores read) and why a label-free score is absent (`summary.json`);
- `describe`: the recorded run as a `data.Dataset`, a `steps.Prepared`, `config.json`;
- `write`: the run folder, written in the store's order with status `done` last.
"""

from scoring.training.record.recorder import Recorder

__all__ = ["Recorder"]
