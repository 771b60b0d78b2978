"""A helper of examples/notebook.ipynb kept in a module beside it: editing this file
makes the notebook's checkpointed function re-run, in the next session or (with
%autoreload) in the same one."""


def normalise(values):
    top = max(values)
    return [v / top for v in values]
