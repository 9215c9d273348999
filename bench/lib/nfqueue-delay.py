#!/usr/bin/env python3
"""A netem-like delay line for kernels without sch_netem: every packet that iptables sends to one
of the given NFQUEUE queues is held for DELAY ms, then accepted (FIFO per queue, so packets are
never reordered). Packet-level, so TCP on either side sees the real added RTT and runs its own
windows, slow start and ACK clock across it, as with netem.

  python3 nfqueue-delay.py DELAY_MS QUEUE [QUEUE ...]

Talks nfnetlink_queue over a raw AF_NETLINK socket (Python standard library only): binds the
queues with copy mode META (no payload copied) and the GSO flag (GSO packets are queued whole),
prints `ready` once bound, and `stats …` lines on SIGUSR1 and at exit. Exits when stdin closes
(the bench died) or on SIGTERM. Run it inside the network namespace whose iptables rules use
the queues: netlink, queues and rules are all per namespace.
"""
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_GSO = 4
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NF_ACCEPT = 1
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = 33


def attr(kind, payload):
    length = 4 + len(payload)
    return struct.pack('=HH', length, kind) + payload + b'\0' * ((4 - length % 4) % 4)


def message(mtype, queue, attrs, flags=NLM_F_REQUEST, seq=0):
    body = struct.pack('=BBH', socket.AF_UNSPEC, 0, socket.htons(queue)) + b''.join(attrs)
    return struct.pack('=IHHII', 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | mtype, flags, seq, 0) + body


def main():
    delay = float(sys.argv[1]) / 1000.0
    queues = [int(q) for q in sys.argv[2:]]
    if not queues:
        sys.exit('usage: nfqueue-delay.py DELAY_MS QUEUE [QUEUE ...]')
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.bind((0, 0))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)

    seq = 0
    for q in queues:
        for attrs in (
            [attr(NFQA_CFG_CMD, struct.pack('>BBH', NFQNL_CFG_CMD_BIND, 0, socket.AF_INET))],
            [attr(NFQA_CFG_PARAMS, struct.pack('>IB', 0, NFQNL_COPY_META)),
             attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack('>I', 65536)),
             attr(NFQA_CFG_MASK, struct.pack('>I', NFQA_CFG_F_GSO)),
             attr(NFQA_CFG_FLAGS, struct.pack('>I', NFQA_CFG_F_GSO))],
        ):
            seq += 1
            sock.send(message(NFQNL_MSG_CONFIG, q, attrs, NLM_F_REQUEST | NLM_F_ACK, seq))
            reply = sock.recv(65536)
            length, mtype = struct.unpack_from('=IH', reply, 0)
            if mtype == NLMSG_ERROR:
                (err,) = struct.unpack_from('=i', reply, 16)
                if err != 0:
                    sys.exit('nfqueue-delay: configuring queue %d failed: %s' % (q, os.strerror(-err)))
    sock.setblocking(False)

    pending = {q: collections.deque() for q in queues}
    counts = {q: 0 for q in queues}
    late = [0.0]

    def stats(*_):
        sys.stdout.write('stats packets=%s maxQueued=%d maxLateMs=%.2f\n' % (
            ','.join('%d:%d' % (q, counts[q]) for q in queues), max_queued[0], late[0] * 1000))
        sys.stdout.flush()

    max_queued = [0]
    signal.signal(signal.SIGUSR1, stats)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    stdin = sys.stdin.fileno()

    while not stop[0]:
        now = time.monotonic()
        next_due = None
        for q, dq in pending.items():
            last = None
            while dq and dq[0][0] <= now:
                due, last = dq.popleft()
                if now - due > late[0]:
                    late[0] = now - due
            if last is not None:
                sock.send(message(NFQNL_MSG_VERDICT_BATCH, q, [attr(NFQA_VERDICT_HDR, struct.pack('>II', NF_ACCEPT, last))]))
            if dq and (next_due is None or dq[0][0] < next_due):
                next_due = dq[0][0]
        timeout = 0.5 if next_due is None else max(0.0, next_due - time.monotonic())
        try:
            ready, _, _ = select.select([sock, stdin], [], [], timeout)
        except InterruptedError:
            continue
        if stdin in ready and not os.read(stdin, 4096):
            break
        if sock not in ready:
            continue
        arrived = time.monotonic() + delay
        while True:
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                break
            off = 0
            while off + 16 <= len(data):
                length, mtype = struct.unpack_from('=IH', data, off)
                if length < 16:
                    break
                if mtype == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    (res_id,) = struct.unpack_from('>H', data, off + 18)
                    a = off + 20
                    while a + 4 <= off + length:
                        alen, akind = struct.unpack_from('=HH', data, a)
                        if alen < 4:
                            break
                        if akind & 0x3fff == NFQA_PACKET_HDR:
                            (packet_id,) = struct.unpack_from('>I', data, a + 4)
                            if res_id in pending:
                                pending[res_id].append((arrived, packet_id))
                                counts[res_id] += 1
                                if len(pending[res_id]) > max_queued[0]:
                                    max_queued[0] = len(pending[res_id])
                            break
                        a += (alen + 3) & ~3
                off += (length + 3) & ~3
    stats()


if __name__ == '__main__':
    main()
