%% @doc The test host's `mongoose_xmpp_errors': stanza `<error/>' elements
%% by MongooseIM's function names, with its legacy codes and error types.
%% The `/1' variants add a `<text/>' child.
-module(mongoose_xmpp_errors).

-export([bad_request/0, bad_request/1, conflict/0, feature_not_implemented/0,
         feature_not_implemented/1, forbidden/0, forbidden/1, internal_server_error/0,
         internal_server_error/1, item_not_found/0, item_not_found/1, jid_malformed/0,
         not_acceptable/0, not_acceptable/1, not_acceptable_cancel/0, not_allowed/0,
         not_allowed/1, not_authorized/0, recipient_unavailable/0,
         remote_server_not_found/0, remote_server_timeout/0, resource_constraint/0,
         service_unavailable/0, service_unavailable/1, service_unavailable_wait/0,
         unexpected_request/0]).

%% Each exported function names one error; `/1' adds the text.
-spec bad_request() -> exml:element().
bad_request() -> error_element(bad_request).
-spec bad_request(binary()) -> exml:element().
bad_request(Text) -> error_element(bad_request, Text).
-spec conflict() -> exml:element().
conflict() -> error_element(conflict).
-spec feature_not_implemented() -> exml:element().
feature_not_implemented() -> error_element(feature_not_implemented).
-spec feature_not_implemented(binary()) -> exml:element().
feature_not_implemented(Text) -> error_element(feature_not_implemented, Text).
-spec forbidden() -> exml:element().
forbidden() -> error_element(forbidden).
-spec forbidden(binary()) -> exml:element().
forbidden(Text) -> error_element(forbidden, Text).
-spec internal_server_error() -> exml:element().
internal_server_error() -> error_element(internal_server_error).
-spec internal_server_error(binary()) -> exml:element().
internal_server_error(Text) -> error_element(internal_server_error, Text).
-spec item_not_found() -> exml:element().
item_not_found() -> error_element(item_not_found).
-spec item_not_found(binary()) -> exml:element().
item_not_found(Text) -> error_element(item_not_found, Text).
-spec jid_malformed() -> exml:element().
jid_malformed() -> error_element(jid_malformed).
-spec not_acceptable() -> exml:element().
not_acceptable() -> error_element(not_acceptable).
-spec not_acceptable(binary()) -> exml:element().
not_acceptable(Text) -> error_element(not_acceptable, Text).
-spec not_acceptable_cancel() -> exml:element().
not_acceptable_cancel() -> error_element(not_acceptable_cancel).
-spec not_allowed() -> exml:element().
not_allowed() -> error_element(not_allowed).
-spec not_allowed(binary()) -> exml:element().
not_allowed(Text) -> error_element(not_allowed, Text).
-spec not_authorized() -> exml:element().
not_authorized() -> error_element(not_authorized).
-spec recipient_unavailable() -> exml:element().
recipient_unavailable() -> error_element(recipient_unavailable).
-spec remote_server_not_found() -> exml:element().
remote_server_not_found() -> error_element(remote_server_not_found).
-spec remote_server_timeout() -> exml:element().
remote_server_timeout() -> error_element(remote_server_timeout).
-spec resource_constraint() -> exml:element().
resource_constraint() -> error_element(resource_constraint).
-spec service_unavailable() -> exml:element().
service_unavailable() -> error_element(service_unavailable).
-spec service_unavailable(binary()) -> exml:element().
service_unavailable(Text) -> error_element(service_unavailable, Text).
-spec service_unavailable_wait() -> exml:element().
service_unavailable_wait() -> error_element(service_unavailable_wait).
-spec unexpected_request() -> exml:element().
unexpected_request() -> error_element(unexpected_request).

%%--------------------------------------------------------------------
%% Internals
%%--------------------------------------------------------------------

-spec error_element(atom()) -> exml:element().
error_element(Name) ->
    {Code, Type, Condition} = definition(Name),
    jlib:stanza_error(Code, Type, Condition).

-spec error_element(atom(), binary()) -> exml:element().
error_element(Name, Text) ->
    {Code, Type, Condition} = definition(Name),
    jlib:stanza_errort(Code, Type, Condition, Text).

%% The legacy code (XEP-0086), error type and defined condition (RFC 6120)
%% MongooseIM uses for each error.
-spec definition(atom()) -> {Code :: binary(), Type :: binary(), Condition :: binary()}.
definition(bad_request) -> {<<"400">>, <<"modify">>, <<"bad-request">>};
definition(conflict) -> {<<"409">>, <<"cancel">>, <<"conflict">>};
definition(feature_not_implemented) -> {<<"501">>, <<"cancel">>, <<"feature-not-implemented">>};
definition(forbidden) -> {<<"403">>, <<"auth">>, <<"forbidden">>};
definition(internal_server_error) -> {<<"500">>, <<"wait">>, <<"internal-server-error">>};
definition(item_not_found) -> {<<"404">>, <<"cancel">>, <<"item-not-found">>};
definition(jid_malformed) -> {<<"400">>, <<"modify">>, <<"jid-malformed">>};
definition(not_acceptable) -> {<<"406">>, <<"modify">>, <<"not-acceptable">>};
definition(not_acceptable_cancel) -> {<<"406">>, <<"cancel">>, <<"not-acceptable">>};
definition(not_allowed) -> {<<"405">>, <<"cancel">>, <<"not-allowed">>};
definition(not_authorized) -> {<<"401">>, <<"auth">>, <<"not-authorized">>};
definition(recipient_unavailable) -> {<<"404">>, <<"wait">>, <<"recipient-unavailable">>};
definition(remote_server_not_found) -> {<<"404">>, <<"cancel">>, <<"remote-server-not-found">>};
definition(remote_server_timeout) -> {<<"504">>, <<"wait">>, <<"remote-server-timeout">>};
definition(resource_constraint) -> {<<"500">>, <<"wait">>, <<"resource-constraint">>};
definition(service_unavailable) -> {<<"503">>, <<"cancel">>, <<"service-unavailable">>};
definition(service_unavailable_wait) -> {<<"502">>, <<"wait">>, <<"service-unavailable">>};
definition(unexpected_request) -> {<<"400">>, <<"wait">>, <<"unexpected-request">>}.
