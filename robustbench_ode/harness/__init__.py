"""The one-cell harness: a cell's config and key (:mod:`.cell`), its test grid as a pure function
(:mod:`.grid`), building its data and model (:mod:`.build`), training and testing it
(:mod:`.execution`), evaluation (:mod:`.evaluation`) and the one result-row builder (:mod:`.rows`)."""
