"""Running suites: the runner (:mod:`.runner`), units of work (:mod:`.jobs`), the cell store
(:mod:`.store`), executors as a registry (:mod:`.executors`), the thread budget (:mod:`.threads`)
and the run's environment record (:mod:`.meta`)."""
