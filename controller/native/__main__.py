"""``python -m controller.native``: build the native page reader."""

from controller.native.build import build

if __name__ == "__main__":
    print(f"built {build()}")
