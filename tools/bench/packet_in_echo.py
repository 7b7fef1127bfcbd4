"""An os-ken application for tools/packetin-bench.sh: every packet that
comes in on port 1 goes to the controller (a packet-in, the whole packet,
no buffer), and the controller sends it straight back out of port 2 (a
packet-out with the same bytes); port 2's traffic goes to port 1 on a
rule. Counts the packet-ins in the file named by PKTIN_COUNT_FILE when
the application stops (SIGTERM)."""

import os
import signal

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3


class PacketInEcho(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.packet_ins = 0
        signal.signal(signal.SIGTERM, self._stop)

    def _stop(self, *_):
        path = os.environ.get("PKTIN_COUNT_FILE")
        if path:
            with open(path, "w") as f:
                f.write("%d\n" % self.packet_ins)
        # A hard exit: eventlet's hub may be busy with a backlog.
        os._exit(0)

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        o, p = dp.ofproto, dp.ofproto_parser
        dp.send_msg(p.OFPSetConfig(dp, o.OFPC_FRAG_NORMAL, 0xffff))

        def add(match, actions):
            inst = [p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS, actions)]
            dp.send_msg(p.OFPFlowMod(datapath=dp, priority=10, match=match, instructions=inst))

        add(p.OFPMatch(in_port=1), [p.OFPActionOutput(o.OFPP_CONTROLLER, o.OFPCML_NO_BUFFER)])
        add(p.OFPMatch(in_port=2), [p.OFPActionOutput(1)])
        dp.send_msg(p.OFPBarrierRequest(dp))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        o, p = dp.ofproto, dp.ofproto_parser
        self.packet_ins += 1
        dp.send_msg(
            p.OFPPacketOut(
                datapath=dp,
                buffer_id=o.OFP_NO_BUFFER,
                in_port=msg.match["in_port"],
                actions=[p.OFPActionOutput(2)],
                data=msg.data,
            )
        )
