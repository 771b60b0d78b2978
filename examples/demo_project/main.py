"""Entry point of the demo project: python main.py"""

import time

from pipeline.train import fit_line

started = time.perf_counter()
slope = fit_line(seed=42)
print(f"  slope = {slope:.4f}  ({time.perf_counter() - started:.2f} s)")
