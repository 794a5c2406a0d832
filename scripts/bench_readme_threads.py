"""The README's own-model benchmark() call: default thread budget vs threads=1, interleaved (BENCHMARKS.md)."""
import sys, time
import torch, robustbench_ode as rb
from torch import nn
from torchdiffeq import odeint

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.f, self.head = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 2)), nn.Linear(2, 2)
    def forward(self, x):
        z = odeint(lambda t, z: self.f(z), x, torch.tensor([0.0, 1.0]), method="euler", options={"step_size": 0.5})
        return self.head(z[-1])
torch.manual_seed(0); x = torch.randn(1000, 2); y = (x.norm(dim=1) > 1.2).long(); model = Model()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
for _ in range(300): opt.zero_grad(); nn.functional.cross_entropy(model(x), y).backward(); opt.step()
res = {"default": [], "1": []}
for r in range(3):
    for t in ("default", "1"):
        t0 = time.perf_counter()
        rb.benchmark(model, (x, y), threads=None if t == "default" else 1)
        res[t].append(time.perf_counter() - t0)
        print(r, t, torch.get_num_threads(), round(res[t][-1], 2), flush=True)
for t, v in res.items():
    print(t, "median", round(sorted(v)[1], 2), [round(a, 2) for a in v])
