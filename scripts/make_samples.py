#!/usr/bin/env python
"""Cut the small committed images (``inputs/`` demo photos, ``tests/data/``) from the CC0 photo.

Source: "seeding" by Clemens Engelhardt, CC0-1.0, from Debian's lomiri-wallpapers-16.04 (fetched by
scripts/fetch_photos.py). Re-running this script reproduces the committed files.
"""
import os
import sys

import cv2

SOURCE = 'datasets/debian_photos/hr/lomiri-wallpapers-16.04__seeding_by_Clements_Engelhardt.png'


def crop(image, top, left, size):
    return image[top:top + size[0], left:left + size[1]]


def main():
    image = cv2.imread(SOURCE, cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f'make_samples: error: {SOURCE} not found; run scripts/fetch_photos.py first')
    height, width = image.shape[:2]
    os.makedirs('inputs', exist_ok=True)
    os.makedirs('tests/data/hr', exist_ok=True)
    # Demo photos: a downscaled view (like a small web photo) and a JPEG-compressed detail.
    small = cv2.resize(image, (width // 8, height // 8), interpolation=cv2.INTER_AREA)
    cv2.imwrite('inputs/seeding_small.png', crop(small, small.shape[0] // 2 - 80, small.shape[1] // 2 - 110, (160, 220)))
    detail = cv2.resize(crop(image, height // 3, width // 3, (640, 640)), (160, 160), interpolation=cv2.INTER_AREA)
    cv2.imwrite('inputs/seeding_detail.jpg', detail, [cv2.IMWRITE_JPEG_QUALITY, 70])
    # Test data: two HR crops for smoke training/validation and one odd-sized LR image.
    for i, (top, left) in enumerate([(height // 2, width // 2), (height // 4, 3 * width // 5)]):
        cv2.imwrite(f'tests/data/hr/seeding_{i}.png', crop(image, top, left, (128, 128)))
    cv2.imwrite('tests/data/lr_37x53.png', cv2.resize(crop(image, height // 2, width // 4, (148, 212)), (53, 37),
                                                      interpolation=cv2.INTER_AREA))
    print('wrote inputs/ and tests/data/', file=sys.stderr)


if __name__ == '__main__':
    main()
