%% The test host's copy of exml 4's records (attrs are a map since exml 4).
-ifndef(EXML_HRL).
-define(EXML_HRL, true).

-record(xmlcdata, {content = [] :: iodata(), style = escaped :: escaped | cdata}).
-record(xmlel, {name :: binary(),
                attrs = #{} :: #{binary() => binary()},
                children = [] :: [#xmlel{} | #xmlcdata{}]}).
-record(xmlstreamstart, {name :: binary(), attrs = #{} :: #{binary() => binary()}}).
-record(xmlstreamend, {name :: binary()}).

-endif.
