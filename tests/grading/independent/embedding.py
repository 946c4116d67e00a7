"""The VGGish network (torchvggish's layout), batched inference, and the PCA postprocessor."""

import numpy as np
import torch
from torch import nn

CONFIG = (64, "pool", 128, "pool", 256, 256, "pool", 512, 512, "pool")


class VGGish(nn.Module):
    def __init__(self):
        super().__init__()
        layers, channels = [], 1
        for width in CONFIG:
            if width == "pool":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = width
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(512 * 6 * 4, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                        nn.ReLU(True), nn.Linear(4096, 128), nn.ReLU(True))

    def forward(self, x):
        maps = self.features(x)                       # [N, 512, 6, 4]
        nhwc = maps.permute(0, 2, 3, 1).reshape(maps.shape[0], -1)
        return self.embeddings(nhwc)


def build_vggish():
    return VGGish()


def embed(model, examples, batch_size=128):
    batch = torch.as_tensor(examples).detach().to(torch.float32)
    if batch.dim() == 3:
        batch = batch[:, None]
    model.eval()
    device = next(model.parameters()).device
    parts = []
    with torch.inference_mode():
        for chunk in torch.split(batch, batch_size):
            parts.append(model(chunk.to(device)).float().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 128), dtype=np.float32)


def postprocess(embeddings, pca_eigen_vectors, pca_means):
    values = np.asarray(embeddings, dtype=np.float32)
    means = np.asarray(pca_means, dtype=np.float32).reshape(1, -1)
    projected = (values - means) @ np.asarray(pca_eigen_vectors, dtype=np.float32).T
    codes = np.round((np.clip(projected, -2.0, 2.0) + 2.0) * (255.0 / 4.0))
    return codes.astype(np.uint8)
