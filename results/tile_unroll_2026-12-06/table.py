#!/usr/bin/env python3
"""The same table for this directory: ../optimizer_simd_2026-12-06/table.py on it."""
import os, runpy, sys
here = os.path.dirname(os.path.abspath(__file__))
sys.argv = [sys.argv[0], here]
runpy.run_path(os.path.join(here, "..", "optimizer_simd_2026-12-06", "table.py"))
