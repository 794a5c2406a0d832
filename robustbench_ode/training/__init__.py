"""Training: one loop (:mod:`.loop`) with pluggable forwards (:mod:`.forward`), controllers
(:mod:`.adaptation`) and probes (:mod:`.probes`); the log rows follow the declared schema
(:mod:`.log`)."""
