"""A gallery of classic mistakes: mutants of ``solutions/``, one mistake each.

Each :class:`Mutant` is a text substitution on one solutions module (applied
to a copy of the package, never to ``solutions/`` itself), the graded check
expected to catch it, and the keyword(s) the hint of a failing check must
contain. :data:`ALTERNATIVES` are *correct* variants (other good resamplers)
that must keep full marks. This is a data module: ``conftest.py`` loads it
and hands the entries to the tests as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """One mistake: replace ``old`` (which must occur exactly once) by ``new`` in ``solutions/<module>.py``."""

    name: str
    module: str
    old: str
    new: str
    catches: str          # "test_<exercise>.py::<check>" expected to fail
    keywords: tuple       # the failing check's hint names the mistake with one of these (case-insensitive)


MUTANTS = [
    # -- resampling
    Mutant("first_channel", "resampling", "return waveform.mean(axis=1)", "return waveform[:, 0]",
           "test_resampling.py::test_to_mono_is_the_channel_mean", ("first channel",)),
    Mutant("channel_sum", "resampling", "return waveform.mean(axis=1)", "return waveform.sum(axis=1)",
           "test_resampling.py::test_to_mono_is_the_channel_mean", ("sum",)),
    Mutant("naive_decimation", "resampling",
           "return resample_poly(waveform, target_sr // common, orig_sr // common)",
           "return waveform[::max(1, round(orig_sr / target_sr))]",
           "test_resampling.py::test_resample_rejects_content_above_new_nyquist", ("anti-aliasing", "decimation")),
    Mutant("linear_interpolation", "resampling",
           "return resample_poly(waveform, target_sr // common, orig_sr // common)",
           "return np.interp(np.arange(round(len(waveform) * target_sr / orig_sr)) * orig_sr / target_sr, "
           "np.arange(len(waveform)), waveform)",
           "test_resampling.py::test_resample_rejects_content_above_new_nyquist", ("np.interp",)),
    Mutant("filter_delay_left_in", "resampling",
           "return resample_poly(waveform, target_sr // common, orig_sr // common)",
           "out = resample_poly(waveform, target_sr // common, orig_sr // common)\n"
           "    return np.concatenate([np.zeros(40), out])[:len(out)]",
           "test_resampling.py::test_resample_keeps_passband_tones", ("delay",)),
    Mutant("inverted_ratio", "resampling",
           "resample_poly(waveform, target_sr // common, orig_sr // common)",
           "resample_poly(waveform, orig_sr // common, target_sr // common)",
           "test_resampling.py::test_resample_length", ("ratio",)),
    # -- logmel
    Mutant("symmetric_hann", "logmel", "2.0 * np.pi * n / window_length", "2.0 * np.pi * n / (window_length - 1)",
           "test_logmel.py::test_periodic_hann", ("symmetric",)),
    Mutant("power_spectrum", "logmel", "n=fft_length))", "n=fft_length)) ** 2",
           "test_logmel.py::test_stft_magnitude_matches_torchvggish", ("power",)),
    Mutant("centred_stft", "logmel", "_frames(np.asarray(signal, dtype=np.float64), window_length, hop_length)",
           "_frames(np.pad(np.asarray(signal, dtype=np.float64), fft_length // 2), window_length, hop_length)",
           "test_logmel.py::test_stft_magnitude_matches_torchvggish", ("centring",)),
    Mutant("drop_last_whole_frame", "logmel", "num_frames = max(0, 1 + (len(signal) - window_length) // hop_length)",
           "num_frames = max(0, (len(signal) - window_length) // hop_length)",
           "test_logmel.py::test_stft_magnitude_matches_torchvggish", ("off by one",)),
    Mutant("mel_edges_evenly_spaced_in_hz", "logmel",
           "edges_mel = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)",
           "edges_mel = hertz_to_mel(np.linspace(lower_edge_hertz, upper_edge_hertz, num_mel_bins + 2))",
           "test_logmel.py::test_mel_matrix_vggish_defaults", ("evenly spaced in mel",)),
    Mutant("slaney_mel", "logmel", "return 1127.0 * np.log(1.0 + np.asarray(frequencies_hertz) / 700.0)",
           "f = np.asarray(frequencies_hertz)\n    return np.where(f < 1000.0, 3.0 * f / 200.0, "
           "15.0 + 27.0 * np.log(np.maximum(f, 1e-9) / 1000.0) / np.log(6.4))",
           "test_logmel.py::test_mel_matrix_vggish_defaults", ("Slaney",)),
    Mutant("area_normalised_mel", "logmel", "    return weights\n", "    return weights / weights.sum(axis=0)\n",
           "test_logmel.py::test_mel_matrix_vggish_defaults", ("normalisation",)),
    Mutant("wrong_mel_range", "logmel", "lower_edge_hertz=125.0, upper_edge_hertz=7500.0):",
           "lower_edge_hertz=0.0, upper_edge_hertz=8000.0):",
           "test_logmel.py::test_mel_matrix_vggish_defaults", ("125", "7500")),
    Mutant("mel_up_to_nyquist", "logmel", "MEL_MAX_HZ = 7500.0", "MEL_MAX_HZ = 8000.0",
           "test_logmel.py::test_log_mel_matches_torchvggish", ("7500",)),
    Mutant("mel_matrix_transposed", "logmel", "    return weights\n", "    return weights.T\n",
           "test_logmel.py::test_mel_matrix_vggish_defaults", ("[num_spectrogram_bins, num_mel_bins]",)),
    Mutant("ignore_sample_rate", "logmel", "    window_length = int(round(sample_rate * WINDOW_SECONDS))\n",
           "    sample_rate = 16000\n    window_length = int(round(sample_rate * WINDOW_SECONDS))\n",
           "test_logmel.py::test_log_mel_at_other_sample_rates", ("ignore sample_rate",)),
    Mutant("log10", "logmel", "np.log(spectrogram @ weights + LOG_OFFSET)",
           "np.log10(spectrogram @ weights + LOG_OFFSET)",
           "test_logmel.py::test_log_mel_of_silence", ("log10",)),
    Mutant("wrong_log_offset", "logmel", "LOG_OFFSET = 0.01 ", "LOG_OFFSET = 1e-6 ",
           "test_logmel.py::test_log_mel_of_silence", ("0.01 offset",)),
    Mutant("offset_outside_log", "logmel", "np.log(spectrogram @ weights + LOG_OFFSET)",
           "np.log(spectrogram @ weights + 1e-10) + LOG_OFFSET",
           "test_logmel.py::test_log_mel_of_silence", ("inside the log",)),
    Mutant("fft_length_400", "logmel", "fft_length = 2 ** int(np.ceil(np.log2(window_length)))",
           "fft_length = window_length", "test_logmel.py::test_log_mel_matches_torchvggish", ("FFT length 512",)),
    Mutant("overlapping_examples", "logmel",
           "    count = log_mel.shape[0] // frames_per_example\n"
           "    return log_mel[:count * frames_per_example].reshape(count, frames_per_example, log_mel.shape[1])\n",
           "    return _frames(log_mel, frames_per_example, frames_per_example // 2)\n",
           "test_logmel.py::test_frame_examples", ("overlapping",)),
    Mutant("padded_tail", "logmel",
           "    log_mel = np.asarray(log_mel)\n    count = log_mel.shape[0] // frames_per_example\n",
           "    count = -(-len(log_mel) // frames_per_example)\n"
           "    log_mel = np.pad(np.asarray(log_mel), ((0, count * frames_per_example - len(log_mel)), (0, 0)))\n",
           "test_logmel.py::test_frame_examples", ("tail",)),
    Mutant("examples_from_frame_1", "logmel", "    count = log_mel.shape[0] // frames_per_example\n",
           "    log_mel = log_mel[1:]\n    count = log_mel.shape[0] // frames_per_example\n",
           "test_logmel.py::test_frame_examples", ("frame 0",)),
    # -- embedding
    Mutant("nchw_flatten", "embedding", "x = x.permute(0, 2, 3, 1).contiguous()", "x = x.contiguous()",
           "test_embedding.py::test_embeddings_match_torchvggish", ("NHWC",)),
    Mutant("no_final_relu", "embedding", "nn.Linear(4096, 128), nn.ReLU(True),", "nn.Linear(4096, 128),",
           "test_embedding.py::test_embeddings_match_torchvggish", ("ReLU",)),
    Mutant("no_channel_axis", "embedding", "examples = examples.unsqueeze(1)", "pass",
           "test_embedding.py::test_embed_with_torchvggish_model", ("channel axis",)),
    Mutant("training_mode", "embedding", "    model.eval()\n", "",
           "test_embedding.py::test_embed_uses_eval_mode", ("eval",)),
    Mutant("autograd_then_detach", "embedding",
           "    with torch.no_grad():\n        for start in range(0, examples.shape[0], BATCH_SIZE):\n"
           "            outputs.append(model(examples[start:start + BATCH_SIZE].to(device)).cpu())",
           "    if True:\n        for start in range(0, examples.shape[0], BATCH_SIZE):\n"
           "            outputs.append(model(examples[start:start + BATCH_SIZE].to(device)).detach().cpu())",
           "test_embedding.py::test_embed_accepts_shapes_and_grad_tensors", ("no_grad",)),
    Mutant("one_example_per_pass", "embedding", "BATCH_SIZE = 64", "BATCH_SIZE = 1",
           "test_embedding.py::test_embed_is_batched", ("batch",)),
    Mutant("squeezed_single_example", "embedding", "return torch.cat(outputs).numpy().astype(np.float32)",
           "return torch.cat(outputs).squeeze().numpy().astype(np.float32)",
           "test_embedding.py::test_embed_accepts_shapes_and_grad_tensors", ("squeeze",)),
    Mutant("pca_without_centring", "embedding", "projected = (embeddings - means) @ eigen_vectors.T",
           "projected = embeddings @ eigen_vectors.T",
           "test_embedding.py::test_postprocess_matches_torchvggish", ("centre",)),
    Mutant("eigenvectors_as_columns", "embedding", "@ eigen_vectors.T", "@ eigen_vectors",
           "test_embedding.py::test_postprocess_matches_torchvggish", ("E.T",)),
    Mutant("quantise_without_clip", "embedding", "clipped = np.clip(projected, -2.0, 2.0)", "clipped = projected",
           "test_embedding.py::test_postprocess_clips_before_quantising", ("clip",)),
    Mutant("truncate_not_round", "embedding", "np.round((clipped + 2.0) * (255.0 / 4.0))",
           "np.floor((clipped + 2.0) * (255.0 / 4.0))",
           "test_embedding.py::test_postprocess_matches_torchvggish", ("truncate",)),
    # -- classify
    Mutant("max_pooling", "classify", ".mean(axis=0)", ".max(axis=0)",
           "test_classify.py::test_pool_is_the_mean_over_leading_axes", ("max pooling",)),
    Mutant("no_standardisation", "classify", '        ("scale", StandardScaler()),\n', "",
           "test_classify.py::test_make_classifier_ignores_feature_scale", ("standardise",)),
    Mutant("fit_on_all_data", "classify", "model.fit(X[train], y[train])", "model.fit(X, y)",
           "test_classify.py::test_cross_validated_auc_has_no_leakage", ("leakage",)),
    Mutant("score_training_fold", "classify", "roc_auc_score(y[test], model.predict_proba(X[test])[:, 1])",
           "roc_auc_score(y[train], model.predict_proba(X[train])[:, 1])",
           "test_classify.py::test_cross_validated_auc_has_no_leakage", ("held-out",)),
    Mutant("labels_not_probabilities", "classify", "model.predict_proba(X[test])[:, 1]", "model.predict(X[test])",
           "test_classify.py::test_cross_validated_auc_uses_probabilities", ("probabilities",)),
    Mutant("unstratified_folds", "classify", "    folds = StratifiedKFold(",
           "    from sklearn.model_selection import KFold\n    folds = KFold(",
           "test_classify.py::test_cross_validated_auc_matches_sklearn", ("StratifiedKFold",)),
    Mutant("unshuffled_folds", "classify", "shuffle=True, random_state=random_state)", "shuffle=False)",
           "test_classify.py::test_cross_validated_auc_matches_sklearn", ("shuffle",)),
]

#: Other correct resamplers: every resampling check must still pass with them (the first word of each name is
#: the module it needs). scipy_fft is FFT resampling (``scipy.signal.resample``, librosa's ``res_type="fft"``):
#: band-limited, it maps the clip onto a whole number of samples, a time stretch of at most one sample.
#: resampy and librosa are good resamplers too, but student code may not import them (the grader's default
#: forbidden modules, with warblr and torchvggish), so they are no alternatives here.
_RESAMPLE_CALL = "return resample_poly(waveform, target_sr // common, orig_sr // common)"
ALTERNATIVES = [
    Mutant("soxr", "resampling", _RESAMPLE_CALL,
           "import soxr\n    return soxr.resample(waveform, orig_sr, target_sr)", "test_resampling.py", ()),
    Mutant("scipy_fft", "resampling", _RESAMPLE_CALL,
           "import scipy.signal\n"
           "    return scipy.signal.resample(waveform, round(len(waveform) * target_sr / orig_sr))",
           "test_resampling.py", ()),
]
