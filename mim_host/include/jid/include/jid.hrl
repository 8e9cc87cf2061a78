%% `-include_lib("jid/include/jid.hrl")' as MongooseIM's code and tests
%% write it (see exml/include/exml.hrl): the test host's `#jid{}'.
-include("../../jid.hrl").
