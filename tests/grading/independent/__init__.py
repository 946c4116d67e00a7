"""An independent correct answer to the lab, written from the VGGish spec (not from solutions/).

Used to check that the graded checks accept any correct implementation, not
only the reference one: soxr for resampling, index-matrix framing for the
STFT, ``inference_mode`` batches, ``decision_function`` for the AUC.
"""
