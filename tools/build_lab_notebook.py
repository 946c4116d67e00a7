"""Write ``exercises/lab.ipynb`` from the readable cell list below (no outputs, no execution counts).

Edit the cells here, not in Jupyter, then run::

    python tools/build_lab_notebook.py            # rewrite exercises/lab.ipynb
    python tools/build_lab_notebook.py --check    # exit 1 if the committed notebook differs

The cells stay short: the plumbing (settings, the "not attempted yet" guard,
side-by-side figures) lives in the package :mod:`warblr.lab.notebook`. Each cell has a
stable id, which the tests use to find its outputs.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "exercises" / "lab.ipynb"

KERNEL_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}

# (id, "markdown" or "code", source)
CELLS = [
    ("intro", "markdown", """
        # Lab: pretrained audio features for bird detection

        You will build, one function at a time, the input features and the embeddings of **VGGish**, a
        convolutional network Google trained on millions of YouTube sound clips (AudioSet), and find out whether
        they tell a field recording *with* a bird from one *without*.

        Every code cell calls **your** functions in `exercises/` and shows your result beside a reference: the
        **warblr** engine, an independent implementation of the same VGGish spec.

        * Implement a function in `exercises/*.py` (its docstring explains the concept, the numbers and the
          classic pitfall), save the file, and re-run the cell. No kernel restart is needed: the notebook
          imports your files again when they change.
        * A cell whose function you have not written yet says `not attempted yet: ...`; a later cell that needs
          its result says `skipped: ...`. Nothing crashes, so *Run All* works at any stage of the lab.
        * `python -m pytest exercises` grades the same functions, with hints.

        Settings are environment variables, read by the first code cell (set them before starting Jupyter, e.g.
        `WARBLR_LIMIT=all jupyter lab exercises/lab.ipynb`, or in a cell above it with `%env WARBLR_LIMIT=all`):

        | variable | default | meaning |
        | --- | --- | --- |
        | `WARBLR_IMPL` | `exercises` | whose functions run: `exercises`, `solutions`, or the path of a folder holding `resampling.py`, `logmel.py`, `embedding.py` and `classify.py` |
        | `WARBLR_DATA` | the demo corpus | a dataset folder in the warblrb10k layout |
        | `WARBLR_LIMIT` | `400` | how many clips to use (a stratified random sample); `all` for every clip |
        """),
    ("setup", "code", """
        import warblr
        from warblr import features as reference   # the engine's numpy log-mel: the reference in section 3
        from warblr.lab import notebook as nb      # the notebook's plumbing: the guard, comparisons and plots

        lab = nb.Lab.from_environment()   # reads WARBLR_IMPL, WARBLR_DATA and WARBLR_LIMIT
        impl = lab.impl                   # your modules: impl.resampling, impl.logmel, impl.embedding, impl.classify
        lab.describe()
        """),
    ("dataset-intro", "markdown", """
        ## 1. The dataset

        **warblrb10k** comes from Warblr, a UK smartphone app that identified birds from recordings people sent
        in. Its public part holds 8,000 ten-second clips (44.1 kHz, mono) from all over the UK, each labelled
        by listeners: `hasbird` = 1 if a bird can be heard, 0 if not (about three clips in four have one). The
        recordings are noisy (wind, traffic, voices, rain, handling), which made it one of the datasets of
        the DCASE 2018 *Bird Audio Detection* challenge. On disk it is a folder of `wav/<itemid>.wav` files and
        a CSV with `itemid,datasetid,hasbird`.

        Without `WARBLR_DATA` the notebook uses warblr's **embedded demo corpus**: synthetic clips in the same
        layout (bird-like sweeps, trills and harmonic stacks over wind, rain, traffic, babble or hiss, with
        insects as a confuser), generated offline the first time (a minute or two). The cell says which
        dataset it uses.

        In most field recordings the bird is a small part of the clip. The bird clip shown from here on is the
        one where it is clearest: the largest rise of the energy between 1 and 8 kHz (where most birdsong is)
        over the clip's median level. The figures mark each of its calls with a white strip along the bottom edge
        of the panel, labelled *bird*.
        """),
    ("dataset", "code", """
        with lab.step("dataset"):
            lab.dataset = lab.load_dataset()
        """),
    ("listen", "code", """
        with lab.step("bird", "no_bird"):
            lab.bird, lab.no_bird = lab.example_clips()   # the clearest bird clip and a clip without one
            nb.listen(lab.bird)
            nb.listen(lab.no_bird)
        """),
    ("resampling-intro", "markdown", """
        ## 2. Mono, 16 kHz

        VGGish was trained on mono audio sampled at 16 kHz; field recordings come at 44.1 or 48 kHz, sometimes
        in stereo. `to_mono` averages the channels. `resample` must be **band-limited**: everything above the
        new Nyquist frequency (8 kHz) has to be filtered out first, or it folds back into the band as a tone
        that was never there (aliasing). Any good resampler will do; warblr's reference reproduces the
        `kaiser_best` filter that torchvggish uses, so small differences near 8 kHz are expected, large ones
        below 7 kHz are not.
        """),
    ("to-mono", "code", """
        with lab.step():
            stereo = nb.pretend_stereo(lab.bird)   # [samples, 2]: the clip and a quieter copy from a second microphone
            nb.compare("to_mono", impl.resampling.to_mono(stereo), warblr.to_mono(stereo))
        """),
    ("resample", "code", """
        with lab.step():
            yours = impl.resampling.resample(warblr.to_mono(lab.bird.waveform), lab.bird.sample_rate, 16000)
            nb.show_resampling(lab.bird, yours, lab.bird.mono_16k)   # lab.bird.mono_16k: warblr's 16 kHz version
        """),
    ("logmel-intro", "markdown", """
        ## 3. The VGGish log-mel spectrogram

        VGGish does not look at samples but at a **log-mel spectrogram**: 25 ms windows (400 samples, a
        *periodic* Hann window) every 10 ms (160 samples), the magnitude of a 512-point FFT (257 bins), 64 mel
        bands between 125 and 7500 Hz, `ln(mel + 0.01)`, cut into non-overlapping **examples** of 96 frames
        (0.96 s). Every number matters: the network was trained on exactly these features.

        The cells of this section start from warblr's 16 kHz audio (`lab.bird.mono_16k`), so they work before
        section 2 is done, and they compare your result with warblr's on the same input. Each figure draws
        yours and warblr's on **one colour scale** (the colour bar gives the values and their unit; an arrow at
        its end means some values lie beyond it). When yours differs, a third panel shows *yours − reference*:
        white where they agree, red where yours is higher, blue where it is lower.
        """),
    ("hann", "code", """
        with lab.step():
            nb.compare("periodic_hann", impl.logmel.periodic_hann(400), reference.periodic_hann(400))
        """),
    ("stft", "code", """
        with lab.step():
            signal = lab.bird.mono_16k
            nb.show_stft(impl.logmel.stft_magnitude(signal, 512, 160, 400), reference.stft_magnitude(signal),
                         clip=lab.bird)   # clip: the bird is marked
        """),
    ("mel-intro", "markdown", """
        The mel matrix maps the 257 FFT bins to 64 bands (`mel = stft @ W`): one triangle per band, its edges
        evenly spaced on the HTK mel scale `1127 ln(1 + f / 700)`, so the bands are narrow at low frequencies
        and wide at high ones, as our hearing is.
        """),
    ("mel-matrix", "code", """
        with lab.step():
            nb.show_mel_matrix(impl.logmel.mel_matrix(), reference.mel_matrix())
        """),
    ("log-mel", "code", """
        with lab.step("log_mel"):
            lab.log_mel = impl.logmel.log_mel_spectrogram(lab.bird.mono_16k)
            nb.show_log_mel(lab.log_mel, reference.log_mel_spectrogram(lab.bird.mono_16k), clip=lab.bird)
        """),
    ("frame-examples", "code", """
        with lab.step():
            log_mel = reference.log_mel_spectrogram(lab.bird.mono_16k)   # the same input for yours and warblr's
            nb.show_examples(impl.logmel.frame_examples(log_mel), reference.frame_examples(log_mel), clip=lab.bird)
        """),
    ("waveform-to-examples", "code", """
        with lab.step():
            signal = lab.bird.mono_16k
            nb.show_examples(impl.logmel.waveform_to_examples(signal, 16000),
                             reference.waveform_to_examples(signal, 16000), name="waveform_to_examples", clip=lab.bird)
        """),
    ("librosa-intro", "markdown", """
        ### VGGish's log-mel is not librosa's

        `librosa.feature.melspectrogram` is the usual way to get a mel spectrogram in Python. With its defaults
        it differs from VGGish in three ways: it squares the magnitudes (**power**, not magnitude); it uses
        Slaney's mel scale with area-normalised filters (`htk=True, norm=None` gives VGGish's HTK scale and
        peak-1 triangles); and it **centres** its frames (padding the signal, and placing the 400-sample window in
        the middle of a 512-sample frame), so its frames are shifted. Matched on all three, one difference is
        left: librosa's triangles are **linear in Hz** between their edges, VGGish's are **linear in mel**.

        The figure: your log-mel; librosa's defaults on a log scale of their own (their values are so small
        that VGGish's `+ 0.01` would turn them into one flat colour); the mean level of each band for both
        (power doubles the range, area-normalised filters pull the high bands down); librosa matched to VGGish
        minus yours (blue and red: tiny, from the triangles); and one triangle drawn both ways.
        """),
    ("librosa", "code", """
        with lab.step():
            nb.compare_with_librosa(lab.bird.mono_16k, lab.log_mel, clip=lab.bird)
        """),
    ("embedding-intro", "markdown", """
        ## 4. Embeddings

        VGGish turns each 96 x 64 example into a 128-number **embedding**. Your `build_vggish` must have
        torchvggish's layer names and shapes, so the released weights load into it unchanged. The notebook
        never downloads anything: it uses the released weights when they are on this machine (the torch hub
        cache, or `$WARBLR_VGGISH_WEIGHTS`), and otherwise seeded **random** weights, which it says in bold.
        The AudioSet **postprocessor** then projects the embeddings with PCA, clips them and quantises them to
        8 bits.
        """),
    ("model", "code", """
        with lab.step("model"):
            lab.model = lab.load_weights(impl.embedding.build_vggish())   # the same weights as lab.reference_model
        """),
    ("embed", "code", """
        with lab.step():
            examples = lab.bird.examples   # warblr's examples of the bird clip: [N, 96, 64]
            nb.show_embeddings(impl.embedding.embed(lab.model, examples),
                               warblr.embed_examples(lab.reference_model, examples), pretrained=lab.weights.pretrained,
                               clip=lab.bird)
        """),
    ("postprocess", "code", """
        with lab.step():
            embeddings = warblr.embed_examples(lab.reference_model, lab.bird.examples)
            pca = lab.pca_params()
            nb.show_postprocessed(impl.embedding.postprocess(embeddings, pca["pca_eigen_vectors"], pca["pca_means"]),
                                  warblr.Postprocessor(pca["pca_eigen_vectors"], pca["pca_means"])(embeddings), clip=lab.bird)
        """),
    ("classify-intro", "markdown", """
        ## 5. Bird or no bird?

        A clip gives one log-mel example and one embedding per 0.96 s; the classifier needs one vector per clip,
        so `pool` averages them. Each clip then becomes a point: below, the first two principal components of
        each feature set, coloured by label. Finally your `cross_validated_auc` fits your `make_classifier`
        (standardise, PCA, logistic regression) on each training part of a stratified cross-validation and
        scores the held-out part with the ROC AUC (0.5: chance, 1: perfect). The table sets beside yours the
        AUC `warblr analyse` gets with the same pipeline, folds and seed, at the PCA size of its grid that works
        best.

        This cell runs your whole front end (`waveform_to_examples`), `embed` and `pool` on every clip of the
        sample; warblr only decodes the files.
        """),
    ("pool", "code", """
        with lab.step():
            nb.compare("pool", impl.classify.pool(lab.bird.examples), nb.reference_pool(lab.bird.examples))
            print(impl.classify.make_classifier(8))
        """),
    ("features", "code", """
        with lab.step("features"):
            lab.features = lab.extract_features(model=lab.optional("model"))
        """),
    ("scatter", "code", """
        with lab.step():
            nb.pca_scatter(lab.features)
        """),
    ("auc", "code", """
        with lab.step():
            nb.auc_table(lab.features, impl.classify)
        """),
    ("questions", "markdown", """
        ## 6. Questions to discuss

        1. Why does mean pooling over a 10 s clip lose birdsong? What would you pool instead, and why?
        2. What do embeddings from a network with **random** weights tell us? What would change with the
           released weights, and how would you find out whether the difference comes from the training?
        3. The log-mel row and the VGGish row see the same audio. Why can a classifier find the birds more
           easily in one than in the other?
        4. Your resampler and warblr's differ slightly near 8 kHz. Which mel bands does that touch, and could it
           matter for detecting birds?
        5. How would test-fold leakage (fitting the scaler or the PCA on all clips) change the AUC, and why is
           the number then not to be trusted?
        """),
]


def build():
    """The notebook, as an ``nbformat`` node: the cells above, no outputs."""
    notebook = nbformat.v4.new_notebook(metadata=KERNEL_METADATA)
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    notebook.cells = [make[kind](textwrap.dedent(source).strip("\n"), id=cell_id) for cell_id, kind, source in CELLS]
    nbformat.validate(notebook)
    return notebook


def render():
    """The notebook file's text, exactly as written."""
    return nbformat.writes(build()) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the notebook differs from these cells")
    parser.add_argument("--out", type=Path, default=NOTEBOOK, help=f"where to write (default {NOTEBOOK})")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
        if current != text:
            print(f"{args.out} is out of date: run python tools/build_lab_notebook.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(CELLS)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
