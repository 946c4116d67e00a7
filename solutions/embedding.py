"""Step 3: the VGGish network, batched inference and the PCA postprocessor (solution)."""

import numpy as np
import torch
from torch import nn

CONV_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
BATCH_SIZE = 64


class VGGish(nn.Module):
    """VGGish with torchvggish's module names, so its ``state_dict`` loads unchanged."""

    def __init__(self):
        super().__init__()
        layers, in_channels = [], 1
        for item in CONV_CHANNELS:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_channels = item
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(True),
            nn.Linear(4096, 4096), nn.ReLU(True),
            nn.Linear(4096, 128), nn.ReLU(True),
        )

    def forward(self, x):
        x = self.features(x)                       # [N, 512, 6, 4]  (NCHW)
        x = x.permute(0, 2, 3, 1).contiguous()     # [N, 6, 4, 512]  (NHWC, as TensorFlow flattened)
        return self.embeddings(x.reshape(x.shape[0], -1))


def build_vggish():
    """An untrained VGGish whose ``state_dict`` keys and shapes equal torchvggish's ``VGG``."""
    return VGGish()


def embed(model, examples):
    """Embed ``[N, 96, 64]`` or ``[N, 1, 96, 64]`` log-mel examples: float32 numpy ``[N, 128]``.

    Runs in eval mode without autograd, ``BATCH_SIZE`` examples per forward pass.
    """
    examples = torch.as_tensor(np.asarray(examples.detach().cpu() if torch.is_tensor(examples) else examples),
                               dtype=torch.float32)
    if examples.dim() == 3:
        examples = examples.unsqueeze(1)          # add the channel axis
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with torch.no_grad():
        for start in range(0, examples.shape[0], BATCH_SIZE):
            outputs.append(model(examples[start:start + BATCH_SIZE].to(device)).cpu())
    if not outputs:
        return np.zeros((0, 128), dtype=np.float32)
    return torch.cat(outputs).numpy().astype(np.float32)


def postprocess(embeddings, pca_eigen_vectors, pca_means):
    """PCA (centre, then project), clip to [-2, 2], quantise to uint8 ``[N, 128]``."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    eigen_vectors = np.asarray(pca_eigen_vectors, dtype=np.float64)
    means = np.asarray(pca_means, dtype=np.float64).reshape(-1)
    projected = (embeddings - means) @ eigen_vectors.T
    clipped = np.clip(projected, -2.0, 2.0)
    return np.round((clipped + 2.0) * (255.0 / 4.0)).astype(np.uint8)
