"""The in-sandbox half of the egress proxy, run as `python3 -I -S -c SOURCE SOCKET PORT -- SERVER...`.

It listens on the sandbox's own loopback (127.0.0.1:PORT, where HTTP_PROXY and ALL_PROXY point), hands
every connection to mcpbox's proxy over the Unix socket bound into the sandbox, and execs the server in
its own process, so that the server keeps its place (bwrap's child) and its exit status. The forwarder
itself is reparented to the sandbox's init and dies with the sandbox. It knows no rules: everything is
decided outside, by mcpbox. Standard library only, no site packages (-I -S): it runs with whatever python3
the host has under /usr, which every sandbox binds.
"""

SOURCE = r'''
import os, socket, sys, threading

def pump(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

def relay(client, path):
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()
    client.close()
    upstream.close()

def serve(listener, path):
    while True:
        client, _ = listener.accept()
        threading.Thread(target=relay, args=(client, path), daemon=True).start()

path, port, server = sys.argv[1], int(sys.argv[2]), sys.argv[4:]
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(128)
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):  # the server's pipes: the forwarder must not hold them open
            os.dup2(null, fd)
        serve(listener, path)
    os._exit(0)
os.wait()
listener.close()
os.execv(server[0], server)
'''
