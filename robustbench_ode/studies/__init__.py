"""Studies built on the pipeline: the XOR case of Lady Windermere's fan (:mod:`.xor_fan`), the
GPU throughput benchmark (:mod:`.gpu_bench`), and what landing adaptive solves on t1 changes
(:mod:`.endpoint`, docs/solvers.md)."""
