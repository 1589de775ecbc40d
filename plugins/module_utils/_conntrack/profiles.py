# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sizing profiles: the timeouts each workload wants, its floor for nf_conntrack_max, and why.

``sources`` are the profile's references, said once in the recommendation's ``profile``;
``reasons`` hold one sentence per timeout, true for that value: a bound it cites is written
"at least N s" (or "at most N s") and a unit test checks it against the value.
Private to this collection. Pure data; standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

PROFILES = {
    "default": {
        "description": "Keep the kernel's timeouts; size max and buckets only.",
        "timeouts": {},
        "reasons": {},
        "floor_entries": 0,
        "sources": ["kernel 6.x defaults: net/netfilter/nf_conntrack_proto_*.c"],
    },
    "nat_gateway": {
        "description": "NAT for many clients: idle TCP mappings kept 2 h 4 min, UDP per RFC 4787.",
        "timeouts": {
            "nf_conntrack_tcp_timeout_established": 7440,
            "nf_conntrack_udp_timeout": 60,
            "nf_conntrack_udp_timeout_stream": 180,
        },
        "reasons": {
            "nf_conntrack_tcp_timeout_established": "RFC 5382 REQ-5: an idle established TCP NAT mapping must be"
                                                    " kept at least 7440 s (2 h 4 min)",
            "nf_conntrack_udp_timeout": "UDP flows that never saw a reply, as OpenWrt ships it; RFC 4787 REQ-5's"
                                        " two-minute floor is for mappings with replies, which"
                                        " nf_conntrack_udp_timeout_stream keeps",
            "nf_conntrack_udp_timeout_stream": "RFC 4787 REQ-5: a UDP mapping with replies must be kept at least"
                                               " 120 s; 180 s as OpenWrt ships it",
        },
        "floor_entries": 65536,
        "sources": [
            "RFC 5382 REQ-5: an established TCP NAT mapping must not expire in less than 2 h 4 min (7440 s)",
            "RFC 4787 REQ-5: UDP mappings must live at least 2 min; OpenWrt ships udp 60 s / stream 180 s",
        ],
    },
    "load_balancer": {
        "description": "Many short TCP connections: established idle timeout as IPVS uses (15 min).",
        "timeouts": {
            "nf_conntrack_tcp_timeout_established": 900,
            "nf_conntrack_udp_timeout_stream": 120,
        },
        "reasons": {
            "nf_conntrack_tcp_timeout_established": "the IPVS established timeout (ip_vs_proto_tcp.c): an idle"
                                                    " client connection through a balancer is dropped after 900 s",
            "nf_conntrack_udp_timeout_stream": "pinned to the 6.x kernel default, so that a longer value left on"
                                               " the host does not hold finished UDP streams through the balancer",
        },
        "floor_entries": 131072,
        "sources": [
            "IPVS defaults (net/netfilter/ipvs/ip_vs_proto_tcp.c): established 900 s, fin/time_wait 120 s",
        ],
    },
    "kubernetes_node": {
        "description": "What kube-proxy sets on start: established 24 h, close_wait 1 h, max >= 32768 per CPU.",
        "timeouts": {
            "nf_conntrack_tcp_timeout_established": 86400,
            "nf_conntrack_tcp_timeout_close_wait": 3600,
        },
        "reasons": {
            "nf_conntrack_tcp_timeout_established": "what kube-proxy writes at start (tcpEstablishedTimeout 24h)",
            "nf_conntrack_tcp_timeout_close_wait": "what kube-proxy writes at start (tcpCloseWaitTimeout 1h)",
        },
        "floor_entries": 131072,
        "floor_entries_per_cpu": 32768,
        "sources": [
            "kube-proxy KubeProxyConntrackConfiguration defaults: maxPerCore 32768, min 131072,"
            " tcpEstablishedTimeout 24h, tcpCloseWaitTimeout 1h",
        ],
    },
    "container_host": {
        "description": "Container churn: established 24 h like kube-proxy; every namespace counts up to max.",
        "timeouts": {
            "nf_conntrack_tcp_timeout_established": 86400,
        },
        "reasons": {
            "nf_conntrack_tcp_timeout_established": "kube-proxy's tcpEstablishedTimeout (24h), for the same"
                                                    " short-lived container workload",
        },
        "floor_entries": 131072,
        "sources": [
            "same established timeout as kube-proxy, whose workload (short-lived pods) this mirrors",
            "each network namespace is checked against the one global nf_conntrack_max",
        ],
    },
}
