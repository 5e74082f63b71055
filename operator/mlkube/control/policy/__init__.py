"""Pure decisions: rollout, analysis, A/B reports, the registry, retraining, schedules, job
state, conditions. Functions of their arguments (``now`` included); no I/O."""
