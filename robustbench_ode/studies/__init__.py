"""Studies built on the pipeline: the XOR case of Lady Windermere's fan (:mod:`.xor_fan`), the
GPU throughput benchmark (:mod:`.gpu_bench`), and what landing adaptive solves on t1 changes
(:mod:`.endpoint`, docs/solvers.md), and Dupont et al.'s representability cases read from
committed runs (:mod:`.dupont`, docs/dupont.md)."""
