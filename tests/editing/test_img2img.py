"""img2img plumbing: per-image seeded edits through the pipeline's call, the edit
similarity, and clear errors for a missing folder or a missing transformers package.
(No Stable Diffusion pipeline runs here: transformers is not installed on this machine.)"""
import pytest
import torch

from poisonkit.editing.img2img import edit, edit_similarity, load_img2img


class FakePipe:
    """Stands in for StableDiffusionImg2ImgPipeline's call: adds seeded noise to the image."""

    def __init__(self):
        self.calls = []

    def __call__(self, prompt, image, strength, guidance_scale, num_inference_steps, generator,
                 output_type):
        self.calls.append((prompt, tuple(image.shape), strength, num_inference_steps, output_type))
        noise = torch.rand(image.shape, generator=generator)
        return type("Out", (), {"images": (image + strength * noise).clamp(0, 1)})


def test_edits_are_seeded_per_image_and_compared(crops):
    pipe = FakePipe()
    edited = edit(pipe, crops[:3], "a photo", strength=0.2, steps=4, seed=9)
    assert edited.dtype == torch.uint8 and edited.shape == crops[:3].shape
    assert pipe.calls[0] == ("a photo", (1, 3, 16, 16), 0.2, 4, "pt")
    # The same image gets the same edit whatever batch it is in.
    assert torch.equal(edit(pipe, crops[1:2], "a photo", strength=0.2, steps=4, seed=9), edited[1:2])
    same = edit_similarity(edited, edited)
    assert same["edit_psnr"] == float("inf") and same["edit_ssim"] == pytest.approx(1.0)
    other = edit_similarity(edit(pipe, crops[:3], "a photo", strength=0.9, steps=4, seed=9), edited)
    assert other["edit_psnr"] < 40 and other["edit_ssim"] < 1


def test_missing_pipeline_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="pipeline: .*not a diffusers pipeline folder"):
        load_img2img(tmp_path)


def test_missing_transformers_is_a_clear_error(tmp_path):
    try:
        import transformers  # noqa: F401
        pytest.skip("transformers is installed here")
    except ImportError:
        pass
    (tmp_path / "model_index.json").write_text("{}")
    with pytest.raises(ValueError, match="pipeline: .*needs the transformers package"):
        load_img2img(tmp_path)
