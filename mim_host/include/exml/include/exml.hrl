%% `-include_lib("exml/include/exml.hrl")' as MongooseIM's code and tests
%% write it: epp looks include_lib paths up in the include path first, where
%% the build puts mim_host/include. The records are the test host's.
-include("../../exml.hrl").
