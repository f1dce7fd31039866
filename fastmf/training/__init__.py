"""Training: the one epoch loop every iterative fastmf model runs (:mod:`fastmf.training.loop`).

A model's ``fit`` prepares its state and a :class:`Trainer` (``start``, ``epoch(n)`` -> that epoch's
training metrics, ``finish``; a plain step function is wrapped in a :class:`StepTrainer`) and hands
it to :func:`run_epochs`, which owns what every iterative
model shares: the ``history_`` schema, evaluation on an ``eval_set`` with any rating or ranking
metric of :func:`fastmf.evaluate`, callbacks, early stopping with the best epoch's state restored,
the progress bar, ``verbose`` logging and divergence errors.

This package sits below the models (they call it; it knows a model only as an object with
``history_``/``best_epoch_``, ``predict_indices`` and ``recommend_indices``), so the arrow of
DESIGN.md's layout runs ``models -> training -> data`` here: the loop needs no model class.
"""

from fastmf.training.loop import (DivergenceError, EvalSet, StepTrainer, Trainer, check_fit_options,
                                  metric_direction, run_epochs)

__all__ = ["run_epochs", "Trainer", "StepTrainer", "EvalSet", "check_fit_options", "metric_direction",
           "DivergenceError"]
