/*-------------------------------------------------------------------------
 *
 * topics.c
 *	  Topics: mq.subscribe, mq.unsubscribe and mq.publish.  A subscription
 *	  binds a queue to a pattern (AMQP topic-exchange rules: "*" is one
 *	  word, "#" zero or more) with an optional header filter; a publish puts
 *	  one copy of the message into every queue that has a matching
 *	  subscription, in the publisher's transaction.
 *
 * Subscriptions live in mq.subscription_catalog.  Each backend keeps them
 * compiled in a cache: patterns split into words once, bindings indexed by
 * their first literal word (or, for patterns that start with a wildcard, by
 * their last literal word) so that a publish looks at the few bindings that
 * can match, not at all of them.  subscribe and unsubscribe send a relcache
 * invalidation of mq.subscription_catalog; a change to the queue catalog
 * (drop_queue cascades to subscriptions) or a full reset makes the cache
 * stale too, and the next publish reloads it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "util.h"
#include "shmem.h"
#include "catalog.h"
#include "xact.h"
#include "plans.h"
#include "insert.h"

#define MQT_MAX_BYTES	255		/* of a topic or a pattern */
#define MQT_PUBLISH		1		/* topic rights */
#define MQT_SUBSCRIBE	2
#define MQT_MAX_WORDS	(MQT_MAX_BYTES / 2 + 1)

PG_FUNCTION_INFO_V1(mq_subscribe);
PG_FUNCTION_INFO_V1(mq_unsubscribe);
PG_FUNCTION_INFO_V1(mq_publish);
PG_FUNCTION_INFO_V1(mq_grant_topic);
PG_FUNCTION_INFO_V1(mq_revoke_topic);

typedef enum MqtKind
{
	MQT_WORD,					/* a literal word */
	MQT_STAR,					/* "*": exactly one word */
	MQT_HASH					/* "#": zero or more words */
} MqtKind;

typedef struct MqtToken
{
	MqtKind		kind;
	int			len;			/* of word */
	const char *word;			/* MQT_WORD only; not NUL-terminated */
} MqtToken;

/* One subscription, compiled. */
typedef struct MqtBinding
{
	int			queue;			/* index into mqt_queues (name order) */
	int			ntokens;
	MqtToken   *tokens;			/* runs of "#" collapsed into one */
	int			min_words;		/* words a topic needs: the non-"#" tokens */
	bool		has_hash;		/* else a topic needs exactly min_words */
	Jsonb	   *filter;			/* NULL: no filter */
} MqtBinding;

/* Key of the word indexes: a word inside some longer string. */
typedef struct MqtWordKey
{
	const char *word;
	int			len;
} MqtWordKey;

typedef struct MqtWordEntry
{
	MqtWordKey	key;
	List	   *bindings;		/* of MqtBinding * */
} MqtWordEntry;

/* ---- per-backend cache ------------------------------------------------ */

static MemoryContext mqt_cxt = NULL;	/* everything below lives here */
static bool mqt_valid = false;
static uint64 mqt_inval_count = 0;	/* invalidations seen so far */
static bool mqt_callback_registered = false;
static Oid	mqt_subs_relid = InvalidOid;
static Oid	mqt_catalog_relid = InvalidOid;
static SPIPlanPtr mqt_load_plan = NULL;

static int	mqt_nqueues = 0;
static char **mqt_queues = NULL;	/* subscribed queues, in name order */
static uint64 *mqt_stamp = NULL;	/* per queue: last publish that chose it */
static uint64 mqt_publish_count = 0;
static int	mqt_ngrants = 0;	/* mq.topic_privilege_catalog */
static char **mqt_grant_prefix = NULL;
static Oid *mqt_grant_role = NULL;
static int *mqt_grant_mask = NULL;	/* MQT_PUBLISH | MQT_SUBSCRIBE */
static HTAB *mqt_by_first = NULL;	/* patterns that start with a word */
static HTAB *mqt_by_last = NULL;	/* start with a wildcard, end with a word */
static List *mqt_others = NIL;	/* start and end with a wildcard */

/*
 * Relcache callback: a change of the subscriptions, of the queue catalog
 * (a dropped queue takes its subscriptions with it) or a full reset makes
 * the cache stale.  Nothing is freed here; the next publish reloads.
 */
static void
mqt_invalidate(Datum arg, Oid relid)
{
	if (relid != InvalidOid && relid != mqt_subs_relid && relid != mqt_catalog_relid)
		return;
	mqt_valid = false;
	mqt_inval_count++;
	mqt_subs_relid = InvalidOid;
	mqt_catalog_relid = InvalidOid;
}

static void
mqt_init(void)
{
	if (!mqt_callback_registered)
	{
		CacheRegisterRelcacheCallback(mqt_invalidate, (Datum) 0);
		mqt_callback_registered = true;
	}
	if (mqt_cxt == NULL)
		mqt_cxt = AllocSetContextCreate(CacheMemoryContext, "mq topic cache",
										ALLOCSET_SMALL_SIZES);
}

static Oid
mqt_subscriptions_relid(void)
{
	Oid			catalog = mq_catalog_relid();	/* errors if mq is not installed */

	if (!OidIsValid(mqt_subs_relid))
	{
		mqt_subs_relid = get_relname_relid("subscription_catalog",
										   get_namespace_oid("mq", false));
		if (!OidIsValid(mqt_subs_relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"mq\" is not installed in this database")));
		mqt_catalog_relid = catalog;
	}
	return mqt_subs_relid;
}

/* Tell every backend, at commit, that subscriptions changed; and us now. */
static void
mqt_subscriptions_changed(void)
{
	CacheInvalidateRelcacheByRelid(mqt_subscriptions_relid());
	mqt_valid = false;
	mqt_inval_count++;
}

/* ---- topics and patterns --------------------------------------------- */

/*
 * Split a topic (is_pattern false) or a pattern into its dot-separated
 * words, checking it: raises 22023 naming the value when it is malformed.
 * Returns the number of words; words[i] points into s.
 */
static int
mqt_split(const char *s, bool is_pattern, const char **words, int *lens)
{
	const char *what = is_pattern ? "pattern" : "topic";
	size_t		len = strlen(s);
	int			n = 0;
	const char *p = s;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"\"", what),
				 errdetail("A %s is one or more dot-separated words and cannot be empty.", what)));
	if (len > MQT_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid %s \"%s\"", what, s),
				 errdetail("A %s has at most %d bytes; this one has %zu.",
						   what, MQT_MAX_BYTES, len)));
	for (;;)
	{
		const char *dot = strchr(p, '.');
		int			wlen = dot ? (int) (dot - p) : (int) strlen(p);

		if (wlen == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid %s \"%s\"", what, s),
					 errdetail("A %s cannot have an empty word: it cannot start or end with a dot, nor have two dots in a row.",
							   what)));
		for (int i = 0; i < wlen; i++)
		{
			if (p[i] != '*' && p[i] != '#')
				continue;
			if (!is_pattern)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid topic \"%s\"", s),
						 errdetail("A topic cannot contain \"*\" or \"#\": they are the wildcards of patterns.")));
			if (wlen != 1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid pattern \"%s\"", s),
						 errdetail("In a pattern, \"*\" and \"#\" are whole words, as in \"orders.*.paid\" or \"sensors.#\".")));
		}
		Assert(n < MQT_MAX_WORDS);
		words[n] = p;
		lens[n] = wlen;
		n++;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return n;
}

/* Compile a (valid) pattern into b's tokens, in the current context. */
static void
mqt_compile(const char *pattern, MqtBinding *b)
{
	const char *words[MQT_MAX_WORDS];
	int			lens[MQT_MAX_WORDS];
	int			n = mqt_split(pattern, true, words, lens);

	b->tokens = palloc(n * sizeof(MqtToken));
	b->ntokens = 0;
	b->min_words = 0;
	b->has_hash = false;
	for (int i = 0; i < n; i++)
	{
		MqtToken   *t = &b->tokens[b->ntokens];

		if (lens[i] == 1 && words[i][0] == '#')
		{
			b->has_hash = true;
			/* "#.#" matches what "#" matches */
			if (b->ntokens > 0 && t[-1].kind == MQT_HASH)
				continue;
			t->kind = MQT_HASH;
		}
		else
		{
			b->min_words++;
			t->kind = (lens[i] == 1 && words[i][0] == '*') ? MQT_STAR : MQT_WORD;
		}
		t->word = words[i];
		t->len = lens[i];
		b->ntokens++;
	}
}

/*
 * Does the binding's pattern match the topic's words?  Words are to this
 * what characters are to a glob: "*" is "?", "#" is "*".  Only the last
 * "#" seen is ever backtracked into (a later "#" can absorb whatever an
 * earlier one would), so this is O(tokens x words) at worst and linear in
 * practice, without recursion.
 */
static bool
mqt_match(const MqtBinding *b, const char *const *words, const int *lens, int nwords)
{
	const MqtToken *p = b->tokens;
	int			np = b->ntokens;
	int			pi = 0,
				wi = 0;
	int			back_p = -1,	/* token after the last "#" */
				back_w = 0;		/* first word not yet absorbed by it */

	if (nwords < b->min_words || (!b->has_hash && nwords != b->min_words))
		return false;
	while (wi < nwords)
	{
		if (pi < np && p[pi].kind == MQT_HASH)
		{
			back_p = ++pi;
			back_w = wi;
			continue;
		}
		if (pi < np &&
			(p[pi].kind == MQT_STAR ||
			 (p[pi].len == lens[wi] && memcmp(p[pi].word, words[wi], lens[wi]) == 0)))
		{
			pi++;
			wi++;
			continue;
		}
		if (back_p < 0)
			return false;
		/* let the last "#" absorb one more word and try again */
		pi = back_p;
		wi = ++back_w;
	}
	while (pi < np && p[pi].kind == MQT_HASH)
		pi++;
	return pi == np;
}

/* ---- loading the cache ------------------------------------------------ */

static uint32
mqt_word_hash(const void *key, Size keysize)
{
	const MqtWordKey *k = key;

	return hash_bytes((const unsigned char *) k->word, k->len);
}

static int
mqt_word_cmp(const void *key1, const void *key2, Size keysize)
{
	const MqtWordKey *a = key1;
	const MqtWordKey *b = key2;

	if (a->len != b->len)
		return 1;
	return memcmp(a->word, b->word, a->len);
}

static HTAB *
mqt_word_index(const char *name)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(MqtWordKey);
	ctl.entrysize = sizeof(MqtWordEntry);
	ctl.hash = mqt_word_hash;
	ctl.match = mqt_word_cmp;
	ctl.hcxt = mqt_cxt;
	return hash_create(name, 64, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static void
mqt_index_add(HTAB *index, const MqtToken *t, MqtBinding *b)
{
	MqtWordKey	key = {t->word, t->len};
	MqtWordEntry *e;
	bool		found;

	e = hash_search(index, &key, HASH_ENTER, &found);
	if (!found)
		e->bindings = NIL;
	e->bindings = lappend(e->bindings, b);
}

/*
 * Read every subscription and compile it.  Runs inside SPI.  The rows are
 * read with the latest snapshot, not the transaction's: the cache outlives
 * the transaction, and a change committed after that snapshot sends an
 * invalidation that makes the cache stale again.
 */
/* Topic rights into the cache (after the bindings, same snapshot rules). */
static void
mqt_load_grants(void)
{
	static SPIPlanPtr plan = NULL;
	MemoryContext old;
	int			rc;

	if (plan == NULL)
		plan = mq_prepare("SELECT prefix, grantee, privilege FROM mq.topic_privilege_catalog", 0, NULL);
	rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read topic privileges: %s", SPI_result_code_string(rc));
	old = MemoryContextSwitchTo(mqt_cxt);
	mqt_ngrants = (int) SPI_processed;
	mqt_grant_prefix = palloc(Max(mqt_ngrants, 1) * sizeof(char *));
	mqt_grant_role = palloc(Max(mqt_ngrants, 1) * sizeof(Oid));
	mqt_grant_mask = palloc(Max(mqt_ngrants, 1) * sizeof(int));
	for (int i = 0; i < mqt_ngrants; i++)
	{
		bool		isnull;
		char	   *priv;

		mqt_grant_prefix[i] = TextDatumGetCString(mq_spi_get(i, 1, &isnull));
		mqt_grant_role[i] = DatumGetObjectId(mq_spi_get(i, 2, &isnull));
		priv = TextDatumGetCString(mq_spi_get(i, 3, &isnull));
		mqt_grant_mask[i] = strcmp(priv, "publish") == 0 ? MQT_PUBLISH : MQT_SUBSCRIBE;
	}
	MemoryContextSwitchTo(old);
}

static void mqt_load(void);

/* The cache, up to date with what committed before this statement. */
static void
mqt_ensure_loaded(void)
{
	mqt_init();
	AcceptInvalidationMessages();
	if (!mqt_valid)
		mqt_load();
}

/*
 * Topic rights.  A topic's first word is its namespace: a role may publish
 * topics, or subscribe with patterns, whose first word it was granted
 * (mq.grant_topic).  A pattern that starts with a wildcard can match every
 * namespace: only administrators subscribe with one.
 */
static bool
mqt_may(Oid role, const char *word, int len, int right)
{
	if (mq_is_admin(role))
		return true;
	if (word == NULL)
		return false;
	for (int i = 0; i < mqt_ngrants; i++)
		if ((mqt_grant_mask[i] & right) && strlen(mqt_grant_prefix[i]) == (size_t) len &&
			memcmp(mqt_grant_prefix[i], word, len) == 0 &&
			has_privs_of_role(role, mqt_grant_role[i]))
			return true;
	return false;
}

static void
mqt_require(Oid role, const char *what, const char *word, int len, int right)
{
	if (mqt_may(role, word, len, right))
		return;
	if (word == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to subscribe with pattern \"%s\"", what),
				 errdetail("A pattern that starts with a wildcard matches every topic; only administrators may use one.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to %s \"%s\"",
					right == MQT_PUBLISH ? "publish to topic" : "subscribe with pattern",
					what),
			 errdetail("The right \"%s\" on topics starting with \"%.*s\" is required.",
					   right == MQT_PUBLISH ? "publish" : "subscribe", len, word)));
}

static void
mqt_load(void)
{
	uint64		inval_before = mqt_inval_count;
	SPITupleTable *rows;
	uint64		nrows;
	MemoryContext old;
	MqtBinding *bindings;
	int			rc;

	(void) mqt_subscriptions_relid();
	if (mqt_load_plan == NULL)
		mqt_load_plan = mq_prepare(
			"SELECT queue, pattern, filter FROM mq.subscription_catalog"
			" ORDER BY queue COLLATE pg_catalog.\"C\", pattern COLLATE pg_catalog.\"C\"",
			0, NULL);
	rc = SPI_execute_snapshot(mqt_load_plan, NULL, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "mq: could not read subscriptions: %s", SPI_result_code_string(rc));
	rows = SPI_tuptable;
	nrows = SPI_processed;

	MemoryContextReset(mqt_cxt);
	mqt_ngrants = 0;
	mqt_nqueues = 0;
	mqt_queues = NULL;
	mqt_stamp = NULL;
	mqt_by_first = mqt_by_last = NULL;
	mqt_others = NIL;

	old = MemoryContextSwitchTo(mqt_cxt);
	mqt_queues = palloc(Max(nrows, 1) * sizeof(char *));
	bindings = palloc(Max(nrows, 1) * sizeof(MqtBinding));
	mqt_by_first = mqt_word_index("mq topic bindings by first word");
	mqt_by_last = mqt_word_index("mq topic bindings by last word");
	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple	tup = rows->vals[i];
		TupleDesc	desc = rows->tupdesc;
		MqtBinding *b = &bindings[i];
		bool		isnull;
		char	   *queue = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *pattern = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		Datum		filter = SPI_getbinval(tup, desc, 3, &isnull);
		const MqtToken *first,
				   *last;

		if (mqt_nqueues == 0 || strcmp(mqt_queues[mqt_nqueues - 1], queue) != 0)
			mqt_queues[mqt_nqueues++] = queue;
		b->queue = mqt_nqueues - 1;
		mqt_compile(pattern, b);
		b->filter = isnull ? NULL : DatumGetJsonbPCopy(filter);

		first = &b->tokens[0];
		last = &b->tokens[b->ntokens - 1];
		if (first->kind == MQT_WORD)
			mqt_index_add(mqt_by_first, first, b);
		else if (last->kind == MQT_WORD)
			mqt_index_add(mqt_by_last, last, b);
		else
			mqt_others = lappend(mqt_others, b);
	}
	mqt_stamp = palloc0(Max(mqt_nqueues, 1) * sizeof(uint64));
	MemoryContextSwitchTo(old);
	mqt_load_grants();

	/* an invalidation that came in while we read: use what we read, once */
	mqt_valid = (mqt_inval_count == inval_before);
}

/* ---- publish ---------------------------------------------------------- */

/*
 * The headers every copy carries: the published ones with "topic" set
 * (replacing any "topic" the publisher gave).  Filters are matched against
 * these.
 */
static Jsonb *
mqt_copy_headers(Jsonb *headers, const char *topic)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) topic;
	v.val.string.len = strlen(topic);
	return mq_headers_set(headers, "topic", &v);
}

static bool
mqt_contains(Jsonb *headers, Jsonb *filter)
{
	JsonbIterator *hit = JsonbIteratorInit(&headers->root);
	JsonbIterator *fit = JsonbIteratorInit(&filter->root);

	return JsonbDeepContains(&hit, &fit);
}

typedef struct MqtPublish
{
	const char *const *words;
	const int  *lens;
	int			nwords;
	Jsonb	   *pub_headers;	/* as published */
	const char *topic;
	Jsonb	   *headers;		/* of the copies, built when first needed */
	int		   *chosen;			/* queue indexes */
	int			nchosen;
} MqtPublish;

static void
mqt_consider(MqtPublish *pub, List *bindings)
{
	ListCell   *lc;

	foreach(lc, bindings)
	{
		MqtBinding *b = lfirst(lc);

		if (mqt_stamp[b->queue] == mqt_publish_count)
			continue;			/* the queue has its copy already */
		if (!mqt_match(b, pub->words, pub->lens, pub->nwords))
			continue;
		if (b->filter != NULL)
		{
			if (pub->headers == NULL)
				pub->headers = mqt_copy_headers(pub->pub_headers, pub->topic);
			if (!mqt_contains(pub->headers, b->filter))
				continue;
		}
		mqt_stamp[b->queue] = mqt_publish_count;
		if (pub->chosen == NULL)
			pub->chosen = palloc(mqt_nqueues * sizeof(int));
		pub->chosen[pub->nchosen++] = b->queue;
	}
}

static List *
mqt_lookup(HTAB *index, const char *word, int len)
{
	MqtWordKey	key = {word, len};
	MqtWordEntry *e;

	e = hash_search(index, &key, HASH_FIND, NULL);
	return e ? e->bindings : NIL;
}

static int
mqt_int_cmp(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/* ---- SQL-callable ----------------------------------------------------- */

static char *
mqt_pattern_arg(FunctionCallInfo fcinfo)
{
	const char *words[MQT_MAX_WORDS];
	int			lens[MQT_MAX_WORDS];
	char	   *pattern;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pattern must not be null")));
	pattern = text_to_cstring(PG_GETARG_TEXT_PP(1));
	(void) mqt_split(pattern, true, words, lens);
	return pattern;
}

Datum
mq_subscribe(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr insert_plan = NULL;
	static SPIPlanPtr update_plan = NULL;
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	char	   *pattern = mqt_pattern_arg(fcinfo);
	Jsonb	   *filter = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		created;
	MqCall		call;
	const char *words[MQT_MAX_WORDS];
	int			lens[MQT_MAX_WORDS];

	if (filter != NULL && !JB_ROOT_IS_OBJECT(filter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("filter must be a JSON object"),
				 errdetail("A message is delivered when its headers contain the filter (headers @> filter), so arrays and scalars are not accepted.")));

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	/* 42P01, and no drop meanwhile */
	mq_require_privilege(mq_queue_lookup(name, false), call.caller, MQ_PRIV_MANAGE);
	mqt_ensure_loaded();
	(void) mqt_split(pattern, true, words, lens);
	if (strcmp(pattern, "#") == 0 || words[0][0] == '*' || words[0][0] == '#')
		mqt_require(call.caller, pattern, NULL, 0, MQT_SUBSCRIBE);
	else
		mqt_require(call.caller, pattern, words[0], lens[0], MQT_SUBSCRIBE);
	if (insert_plan == NULL)
	{
		Oid			types[3] = {TEXTOID, TEXTOID, JSONBOID};

		insert_plan = mq_prepare(
			"INSERT INTO mq.subscription_catalog (queue, pattern, filter) VALUES ($1, $2, $3)"
			" ON CONFLICT (queue, pattern) DO NOTHING RETURNING true", 3, types);
		update_plan = mq_prepare(
			"UPDATE mq.subscription_catalog SET filter = $3"
			" WHERE queue" OP("=") "$1 AND pattern" OP("=") "$2", 3, types);
	}
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(pattern);
	args[2] = filter ? JsonbPGetDatum(filter) : (Datum) 0;
	nulls[2] = filter ? ' ' : 'n';
	for (;;)
	{
		if (mq_exec_plan(insert_plan, args, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "mq: could not insert into the subscriptions");
		created = (SPI_processed == 1);
		if (created)
			break;
		/* it exists: the filter of the latest subscribe wins */
		if (mq_exec_plan(update_plan, args, nulls, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "mq: could not update the subscriptions");
		if (SPI_processed == 1)
			break;
		/* unsubscribed meanwhile: insert again */
	}
	mqt_subscriptions_changed();
	mq_call_end(&call);
	PG_RETURN_BOOL(created);
}

Datum
mq_unsubscribe(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	char	   *name = mq_queue_name_arg(fcinfo, 0);
	char	   *pattern = mqt_pattern_arg(fcinfo);
	Datum		args[2];
	bool		removed;
	MqCall		call;

	MqQueue    *q;

	mqt_init();
	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	(void) mqt_subscriptions_relid();
	q = mq_queue_lookup(name, true);
	if (q == NULL)
	{
		/* no queue, no subscription of it */
		mq_call_end(&call);
		PG_RETURN_BOOL(false);
	}
	mq_require_privilege(q, call.caller, MQ_PRIV_MANAGE);
	if (plan == NULL)
	{
		Oid			types[2] = {TEXTOID, TEXTOID};

		plan = mq_prepare(
			"DELETE FROM mq.subscription_catalog"
			" WHERE queue" OP("=") "$1 AND pattern" OP("=") "$2", 2, types);
	}
	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(pattern);
	if (mq_exec_plan(plan, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "mq: could not delete from the subscriptions");
	removed = (SPI_processed > 0);
	if (removed)
		mqt_subscriptions_changed();
	mq_call_end(&call);
	PG_RETURN_BOOL(removed);
}

Datum
mq_publish(PG_FUNCTION_ARGS)
{
	const char *words[MQT_MAX_WORDS];
	int			lens[MQT_MAX_WORDS];
	char	   *topic;
	Jsonb	   *message;
	Interval   *delay = PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3);
	text	   *group_key = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_TEXT_PP(4) : NULL;
	MqtPublish	pub;
	char	  **names;
	TimestampTz now,
				visible_at;
	int			delivered = 0;
	MqCall		call;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("topic must not be null")));
	topic = text_to_cstring(PG_GETARG_TEXT_PP(0));
	memset(&pub, 0, sizeof(pub));
	pub.nwords = mqt_split(topic, false, words, lens);
	pub.words = words;
	pub.lens = lens;
	pub.topic = topic;
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("message must not be null")));
	message = PG_GETARG_JSONB_P(1);
	pub.pub_headers = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	mq_check_headers(pub.pub_headers, true);
	if (delay != NULL && mq_interval_negative(delay))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("delay must not be negative")));
	if (delay != NULL)
		mq_check_interval_max("delay", delay);
	mq_check_group_key(group_key);

	/* subscriptions committed since the last statement count */
	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	mqt_ensure_loaded();
	mqt_require(call.caller, topic, words[0], lens[0], MQT_PUBLISH);

	/* the bindings that can match: by first word, by last word, the rest */
	mqt_publish_count++;
	if (mqt_nqueues > 0)
	{
		mqt_consider(&pub, mqt_lookup(mqt_by_first, words[0], lens[0]));
		mqt_consider(&pub, mqt_lookup(mqt_by_last, words[pub.nwords - 1],
									  lens[pub.nwords - 1]));
		mqt_consider(&pub, mqt_others);
	}
	if (pub.nchosen == 0)
	{
		mq_call_end(&call);
		PG_RETURN_INT32(0);
	}

	/*
	 * Deliver in queue-name order.  The names are copied: inserting can run
	 * triggers, and a publish from one of those would reload the cache.
	 */
	qsort(pub.chosen, pub.nchosen, sizeof(int), mqt_int_cmp);
	names = palloc(pub.nchosen * sizeof(char *));
	for (int i = 0; i < pub.nchosen; i++)
		names[i] = pstrdup(mqt_queues[pub.chosen[i]]);
	if (pub.headers == NULL)
		pub.headers = mqt_copy_headers(pub.pub_headers, topic);

	now = mq_now();
	visible_at = delay ? mq_add_interval(now, delay) : now;
	for (int i = 0; i < pub.nchosen; i++)
	{
		MqQueue    *q = mq_queue_lookup(names[i], true);
		MqOutMessage m;

		if (q == NULL)
			continue;			/* dropped since the cache was loaded */
		memset(&m, 0, sizeof(m));
		m.message = message;
		m.headers = pub.headers;
		m.enqueued_at = now;
		m.group_key = group_key;
		mq_insert_message(q, mq_queue_shared(q), &m, visible_at, true);
		delivered++;
	}
	mq_call_end(&call);
	PG_RETURN_INT32(delivered);
}

/* ---- topic rights ------------------------------------------------------ */

static Datum
mqt_grant_or_revoke(FunctionCallInfo fcinfo, bool grant)
{
	char	   *prefix;
	Datum	   *privs;
	bool	   *privnulls;
	int			nprivs;
	MqCall		call;

	for (int i = 0; i < 3; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be null", i == 0 ? "prefix" : i == 1 ? "role" : "privileges")));
	if (grant)
		(void) mq_role_arg(fcinfo, 1);
	prefix = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (prefix[0] == '\0' || strpbrk(prefix, ".*#") != NULL || strlen(prefix) > MQT_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid topic prefix \"%s\"", prefix),
				 errdetail("A topic prefix is the first word of topics: no dots, no wildcards.")));
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false, TYPALIGN_INT,
					  &privs, &privnulls, &nprivs);
	for (int i = 0; i < nprivs; i++)
	{
		char	   *p = privnulls[i] ? NULL : TextDatumGetCString(privs[i]);

		if (p == NULL || (strcmp(p, "publish") != 0 && strcmp(p, "subscribe") != 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized topic privilege \"%s\"", p ? p : "NULL"),
					 errhint("The topic privileges are publish and subscribe.")));
	}

	mq_require_primary(fcinfo);
	mq_call_begin(&call);
	if (!mq_is_admin(call.caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s topic privileges", grant ? "grant" : "revoke"),
				 errdetail("Only superusers and the owner of extension \"mq\" manage topic privileges.")));
	mq_privilege_rows_change(true, prefix, PG_GETARG_DATUM(1), privs, nprivs, grant);
	mqt_init();
	mqt_subscriptions_changed();
	mq_call_end(&call);
	PG_RETURN_VOID();
}

Datum
mq_grant_topic(PG_FUNCTION_ARGS)
{
	return mqt_grant_or_revoke(fcinfo, true);
}

Datum
mq_revoke_topic(PG_FUNCTION_ARGS)
{
	return mqt_grant_or_revoke(fcinfo, false);
}
