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

-spec bad_request() -> exml:element().
bad_request() -> jlib:stanza_error(<<"400">>, <<"modify">>, <<"bad-request">>).
-spec bad_request(binary()) -> exml:element().
bad_request(Text) -> jlib:stanza_errort(<<"400">>, <<"modify">>, <<"bad-request">>, Text).
-spec conflict() -> exml:element().
conflict() -> jlib:stanza_error(<<"409">>, <<"cancel">>, <<"conflict">>).
-spec feature_not_implemented() -> exml:element().
feature_not_implemented() ->
    jlib:stanza_error(<<"501">>, <<"cancel">>, <<"feature-not-implemented">>).
-spec feature_not_implemented(binary()) -> exml:element().
feature_not_implemented(Text) ->
    jlib:stanza_errort(<<"501">>, <<"cancel">>, <<"feature-not-implemented">>, Text).
-spec forbidden() -> exml:element().
forbidden() -> jlib:stanza_error(<<"403">>, <<"auth">>, <<"forbidden">>).
-spec forbidden(binary()) -> exml:element().
forbidden(Text) -> jlib:stanza_errort(<<"403">>, <<"auth">>, <<"forbidden">>, Text).
-spec internal_server_error() -> exml:element().
internal_server_error() -> jlib:stanza_error(<<"500">>, <<"wait">>, <<"internal-server-error">>).
-spec internal_server_error(binary()) -> exml:element().
internal_server_error(Text) ->
    jlib:stanza_errort(<<"500">>, <<"wait">>, <<"internal-server-error">>, Text).
-spec item_not_found() -> exml:element().
item_not_found() -> jlib:stanza_error(<<"404">>, <<"cancel">>, <<"item-not-found">>).
-spec item_not_found(binary()) -> exml:element().
item_not_found(Text) -> jlib:stanza_errort(<<"404">>, <<"cancel">>, <<"item-not-found">>, Text).
-spec jid_malformed() -> exml:element().
jid_malformed() -> jlib:stanza_error(<<"400">>, <<"modify">>, <<"jid-malformed">>).
-spec not_acceptable() -> exml:element().
not_acceptable() -> jlib:stanza_error(<<"406">>, <<"modify">>, <<"not-acceptable">>).
-spec not_acceptable(binary()) -> exml:element().
not_acceptable(Text) -> jlib:stanza_errort(<<"406">>, <<"modify">>, <<"not-acceptable">>, Text).
-spec not_acceptable_cancel() -> exml:element().
not_acceptable_cancel() -> jlib:stanza_error(<<"406">>, <<"cancel">>, <<"not-acceptable">>).
-spec not_allowed() -> exml:element().
not_allowed() -> jlib:stanza_error(<<"405">>, <<"cancel">>, <<"not-allowed">>).
-spec not_allowed(binary()) -> exml:element().
not_allowed(Text) -> jlib:stanza_errort(<<"405">>, <<"cancel">>, <<"not-allowed">>, Text).
-spec not_authorized() -> exml:element().
not_authorized() -> jlib:stanza_error(<<"401">>, <<"auth">>, <<"not-authorized">>).
-spec recipient_unavailable() -> exml:element().
recipient_unavailable() -> jlib:stanza_error(<<"404">>, <<"wait">>, <<"recipient-unavailable">>).
-spec remote_server_not_found() -> exml:element().
remote_server_not_found() ->
    jlib:stanza_error(<<"404">>, <<"cancel">>, <<"remote-server-not-found">>).
-spec remote_server_timeout() -> exml:element().
remote_server_timeout() -> jlib:stanza_error(<<"504">>, <<"wait">>, <<"remote-server-timeout">>).
-spec resource_constraint() -> exml:element().
resource_constraint() -> jlib:stanza_error(<<"500">>, <<"wait">>, <<"resource-constraint">>).
-spec service_unavailable() -> exml:element().
service_unavailable() -> jlib:stanza_error(<<"503">>, <<"cancel">>, <<"service-unavailable">>).
-spec service_unavailable(binary()) -> exml:element().
service_unavailable(Text) ->
    jlib:stanza_errort(<<"503">>, <<"cancel">>, <<"service-unavailable">>, Text).
-spec service_unavailable_wait() -> exml:element().
service_unavailable_wait() -> jlib:stanza_error(<<"502">>, <<"wait">>, <<"service-unavailable">>).
-spec unexpected_request() -> exml:element().
unexpected_request() -> jlib:stanza_error(<<"400">>, <<"wait">>, <<"unexpected-request">>).
