#!/usr/bin/env python
"""Fetch the 54 high-resolution training photographs from Debian packages.

Every photo comes from a Debian package, downloaded with ``apt-get download`` and unpacked with
``dpkg-deb --fsys-tarfile | tar -x`` so that nothing is installed system-wide. Only the listed files
and each package's ``copyright`` file are kept. Grayscale, palette and alpha images are converted to
8-bit RGB PNG so that every training file reads the same way.

Usage::

    python scripts/fetch_photos.py                 # -> datasets/debian_photos/{hr,copyright}, manifest.json
    python scripts/fetch_photos.py -o /data/photos

``apt-get update`` must have been run once. The output folder is git-ignored: commit no photos.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from PIL import Image

PLASMA = ['BytheWater', 'ColdRipple', 'ColorfulCups', 'DarkestHour', 'EveningGlow', 'FallenLeaf', 'Grey', 'Kite',
          'OneStandsOut', 'Path', 'summer_1am']
LXQT = ['Butterfly-Kenneth-Wimer.jpg', 'Valendas.png', 'after-the-rain.jpg', 'appleflower.png', 'beam.png',
        'butterfly.png', 'cloud.png', 'drop.png', 'flowers.png', 'fog.jpg', 'this-is-not-windows.jpg']

# package -> (glob patterns of member paths, excluded basenames)
SOURCES = {
    'plasma-workspace-wallpapers': ([f'./usr/share/wallpapers/{n}/contents/images/2560x1600.jpg' for n in PLASMA], []),
    'mate-backgrounds': (['./usr/share/backgrounds/mate/nature/*.jpg'], []),
    'lomiri-wallpapers-16.04': (['./usr/share/backgrounds/*.jpg'], ['umang_by_Abhishek_Mudgal.jpg']),
    'lomiri-wallpapers-20.04': (['./usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg'], []),
    'lxqt-themes': ([f'./usr/share/lxqt/wallpapers/{n}' for n in LXQT], []),
    'palapeli-data': (['./usr/share/palapeli/collection/*.jpg'], []),
}
EXPECTED_COUNT = 54


def photo_name(package, member):
    """A stable, unique file name: plasma photos are all called 2560x1600.jpg, so use their folder name."""
    parts = member.split('/')
    base = parts[-4] if package == 'plasma-workspace-wallpapers' else os.path.splitext(parts[-1])[0]
    return f'{package}__{base}.png'


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def download_deb(package, workdir):
    subprocess.run(['apt-get', 'download', package], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    debs = [f for f in os.listdir(workdir) if f.startswith(package + '_') and f.endswith('.deb')]
    if not debs:
        sys.exit(f'fetch_photos: error: apt-get download {package} produced no .deb; run apt-get update first')
    return os.path.join(workdir, debs[0])


def extract_members(deb, patterns, excluded, package, dest):
    """Stream the package's data tarball and pull out matching members without unpacking the rest."""
    copyright_member = f'./usr/share/doc/{package}/copyright'
    tar_proc = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb], stdout=subprocess.PIPE)
    found = {}
    with tarfile.open(fileobj=tar_proc.stdout, mode='r|') as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name if member.name.startswith('./') else './' + member.name
            if name == copyright_member:
                found['copyright'] = tar.extractfile(member).read()
            elif any(fnmatch.fnmatch(name, p) for p in patterns) and os.path.basename(name) not in excluded:
                found[name] = tar.extractfile(member).read()
    tar_proc.wait()
    return found


def to_rgb(image):
    """Grey, palette, 16-bit and alpha images become 8-bit RGB (the wallpapers' alpha is opaque)."""
    if image.mode in ('RGBA', 'LA', 'PA') or (image.mode == 'P' and 'transparency' in image.info):
        image = image.convert('RGBA')
        return image.convert('RGB')
    if image.mode.startswith('I;16') or image.mode == 'I':
        image = image.point(lambda v: v / 256).convert('L')
    return image.convert('RGB')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-o', '--output', default='datasets/debian_photos', help='output folder (default: %(default)s)')
    args = parser.parse_args()
    hr_dir = os.path.join(args.output, 'hr')
    doc_dir = os.path.join(args.output, 'copyright')
    os.makedirs(hr_dir, exist_ok=True)
    os.makedirs(doc_dir, exist_ok=True)
    manifest = []
    with tempfile.TemporaryDirectory() as workdir:
        for package, (patterns, excluded) in SOURCES.items():
            print(f'fetching {package} ...', file=sys.stderr, flush=True)
            deb = download_deb(package, workdir)
            members = extract_members(deb, patterns, excluded, package, hr_dir)
            copyright_text = members.pop('copyright', None)
            if copyright_text is not None:
                with open(os.path.join(doc_dir, f'{package}.copyright'), 'wb') as f:
                    f.write(copyright_text)
            for member, data in sorted(members.items()):
                out = os.path.join(hr_dir, photo_name(package, member))
                src = os.path.join(workdir, 'photo')
                with open(src, 'wb') as f:
                    f.write(data)
                with Image.open(src) as image:
                    rgb = to_rgb(image)
                    rgb.save(out + '.tmp.png')
                    size = rgb.size
                os.replace(out + '.tmp.png', out)
                manifest.append({'file': os.path.basename(out), 'package': package, 'member': member[2:],
                                 'source_sha256': hashlib.sha256(data).hexdigest(), 'sha256': sha256(out),
                                 'width': size[0], 'height': size[1]})
            os.remove(deb)
    with open(os.path.join(args.output, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    print(f'{len(manifest)} photos in {hr_dir}', file=sys.stderr)
    if len(manifest) != EXPECTED_COUNT:
        print(f'fetch_photos: warning: expected {EXPECTED_COUNT} photos, got {len(manifest)}', file=sys.stderr)
    shutil.rmtree(os.path.join(args.output, 'tmp'), ignore_errors=True)


if __name__ == '__main__':
    main()
