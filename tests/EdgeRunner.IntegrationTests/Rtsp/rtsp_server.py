#!/usr/bin/python3
"""Minimal RTSP server for EdgeRunner's capture tests (GStreamer gst-rtsp-server through python3-gi).

Serves a live test pattern (videotestsrc, SMPTE colour bars) as MJPEG over RTP at
rtsp://127.0.0.1:<port>/test, optionally behind Basic authentication.

Usage: rtsp_server.py PORT [--size WxH] [--fps N] [--user USER (--password PASSWORD | --password-file FILE)]
Prints "ready rtsp://127.0.0.1:PORT/test" on stdout once listening; runs until killed.
Exit code 3 when a GStreamer component is missing (the test skips with that message).
"""

import argparse
import signal
import sys

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
except (ImportError, ValueError) as error:
    print(f"missing GStreamer RTSP server bindings: {error}", file=sys.stderr, flush=True)
    sys.exit(3)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--password-file", help="read the password from this file (keeps it off every command line)")
    args = parser.parse_args()
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            args.password = f.read().strip()
    width, height = (int(v) for v in args.size.split("x"))

    Gst.init(None)
    for element in ("videotestsrc", "jpegenc", "rtpjpegpay"):
        if Gst.ElementFactory.find(element) is None:
            print(f"missing GStreamer element: {element}", file=sys.stderr, flush=True)
            return 3

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=smpte "
        f"! video/x-raw,format=I420,width={width},height={height},framerate={args.fps}/1 "
        f"! jpegenc quality=85 ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken.new()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)

    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 2

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"ready rtsp://127.0.0.1:{args.port}/test", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
