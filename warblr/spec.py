"""Every VGGish constant in one place (the role of TF VGGish's ``vggish_params.py``).

Nothing else in warblr writes these numbers down; import them from here.
"""

# Audio.
SAMPLE_RATE = 16000
INT16_SCALE = 32768.0  # torchvggish's wavfile_to_examples divides int16 PCM by this

# STFT.
STFT_WINDOW_LENGTH_SECONDS = 0.025
STFT_HOP_LENGTH_SECONDS = 0.010
STFT_WINDOW_LENGTH = 400  # samples at 16 kHz
STFT_HOP_LENGTH = 160
FFT_LENGTH = 512  # next power of two above the window
NUM_SPECTROGRAM_BINS = FFT_LENGTH // 2 + 1  # 257

# Mel filterbank (HTK mel, triangles in the mel domain, DC bin zeroed).
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
MEL_BREAK_FREQUENCY_HERTZ = 700.0
MEL_HIGH_FREQUENCY_Q = 1127.0
LOG_OFFSET = 0.01  # natural log(mel + LOG_OFFSET)

# Examples.
EXAMPLE_WINDOW_SECONDS = 0.96
EXAMPLE_HOP_SECONDS = 0.96
NUM_FRAMES = 96  # frames per example
NUM_BANDS = NUM_MEL_BINS
EXAMPLE_SAMPLES = (NUM_FRAMES - 1) * STFT_HOP_LENGTH + STFT_WINDOW_LENGTH  # 15600: shortest audio with one example

# Network.
CONV_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
FEATURE_MAP_SHAPE = (512, 6, 4)  # channels, frames, bands after the last pool (NCHW)
FLAT_FEATURES = 512 * 6 * 4  # 12288
FC_SIZES = (4096, 4096)
EMBEDDING_SIZE = 128
MULTIPLY_ADDS_PER_EXAMPLE = 0.864e9  # about 0.86 G per 0.96 s example
DEFAULT_BATCH_SIZE = 64  # examples per network call in extract/analyse/embed/bench and the library
#: Network precisions the engine runs: float32 (default, torchvggish parity), the others opt-in
#: (int8: post-training static quantisation on CPU, see warblr.quantize).
NETWORK_DTYPES = ("float32", "bfloat16", "float16", "int8")

# Postprocessor (PCA + 8-bit quantisation).
PCA_EIGEN_VECTORS_NAME = "pca_eigen_vectors"
PCA_MEANS_NAME = "pca_means"
QUANTIZE_MIN_VAL = -2.0
QUANTIZE_MAX_VAL = 2.0
QUANTIZE_LEVELS = 255

# Released weights: torchvggish's file names and URLs.
VGGISH_WEIGHTS_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"
PCA_PARAMS_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish_pca_params-970ea276.pth"
VGGISH_WEIGHTS_FILENAME = "vggish-10086976.pth"
PCA_PARAMS_FILENAME = "vggish_pca_params-970ea276.pth"
WEIGHTS_ENV_VAR = "WARBLR_VGGISH_WEIGHTS"
PCA_ENV_VAR = "WARBLR_VGGISH_PCA"
