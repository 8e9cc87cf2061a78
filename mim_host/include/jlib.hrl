%% The test host's jlib.hrl: as in MongooseIM it brings the exml and jid records.
-ifndef(MONGOOSEIM_JLIB_HRL).
-define(MONGOOSEIM_JLIB_HRL, true).

-include("exml.hrl").
-include("mongoose_ns.hrl").
-include("jid.hrl").

-record(iq, {id = <<>> :: binary(),
             type :: atom(),
             xmlns = <<>> :: binary(),
             lang = <<>> :: binary(),
             sub_el :: [#xmlel{}] | #xmlel{}}).

-endif.
