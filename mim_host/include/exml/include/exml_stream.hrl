%% `-include_lib("exml/include/exml_stream.hrl")': the stream records
%% (`#xmlstreamstart{}', `#xmlstreamend{}') are in the test host's exml.hrl.
-include("../../exml.hrl").
