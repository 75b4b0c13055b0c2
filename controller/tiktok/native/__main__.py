"""``python -m controller.tiktok.native``: build the native page reader."""

from controller.tiktok.native.build import build

if __name__ == "__main__":
    print(f"built {build()}")
