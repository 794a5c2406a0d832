"""Studies built on the pipeline: the XOR case of Lady Windermere's fan (:mod:`.xor_fan`) and the
GPU throughput benchmark (:mod:`.gpu_bench`)."""
