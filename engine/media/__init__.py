"""Finding media files on disk and decoding them: scanning, images, video frame sampling."""
