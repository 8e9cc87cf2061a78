%% The test host's copy of the jid library's record.
-ifndef(JID_HRL).
-define(JID_HRL, true).

-record(jid, {luser = <<>> :: jid:luser(),
              lserver = <<>> :: jid:lserver(),
              lresource = <<>> :: jid:lresource()}).

-endif.
