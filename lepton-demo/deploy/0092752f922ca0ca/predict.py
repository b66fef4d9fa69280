"""Load this bundle and predict: python predict.py INPUT.csv [OUTPUT.csv]"""
import sys
from pathlib import Path

import pandas as pd
from lepton.deploy.bundle import load_bundle

model = load_bundle(Path(__file__).parent)  # verifies every file's hash
frame = pd.read_csv(sys.argv[1])
out = frame.assign(prediction=model.predict(frame))
out.to_csv(sys.argv[2] if len(sys.argv) > 2 else sys.stdout, index=False)
