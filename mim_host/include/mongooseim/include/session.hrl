%% `-include_lib("mongooseim/include/session.hrl")': the test host's copy.
-include("../../session.hrl").
