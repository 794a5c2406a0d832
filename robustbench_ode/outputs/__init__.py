"""Outputs, built from a run's tables alone: the tables themselves (:mod:`.tables`), the summary
metrics (:mod:`.summary`), the critical step count (:mod:`.critical`), the leaderboard
(:mod:`.leaderboard`), the CI gate (:mod:`.gate`), the figures (:mod:`.figures`) and the report
(:mod:`.report`)."""
