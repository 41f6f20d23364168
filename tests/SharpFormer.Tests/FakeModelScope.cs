using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace SharpFormer.Tests;

/// <summary>
/// An in-process ModelScope on loopback speaking the API the modelscope SDK uses, with its JSON envelope
/// (<c>{"Code": 200, "Success": true, "Data": ...}</c>): <c>/api/v1/models/ORG/NAME/revisions</c> (RevisionMap.Branches
/// and Tags with Revision and CreatedAt), <c>/repo/files?Revision=R&amp;Recursive=True</c> (Files: Name, Path, Type,
/// Size, Sha256, Revision = the file's commit) and <c>/repo?Revision=R&amp;FilePath=F</c> serving small files itself and
/// redirecting LFS files to the CDN; gated repos answer 401 without the <c>m_session_id</c> cookie of the good token;
/// unknown models 404 with the envelope's error.
/// </summary>
public sealed class FakeModelScope : FakeHubServer
{
    /// <summary>The token a gated repo accepts (sent by clients as the m_session_id cookie).</summary>
    public const string GoodToken = "ms-good";

    readonly Dictionary<string, List<(string Revision, bool Branch, long CreatedAt, string Commit, Dictionary<string, byte[]> Files)>> repos = [];

    /// <summary>Publishes <paramref name="files"/> as <paramref name="repoId"/> at branch or tag <paramref name="revision"/>; returns the commit its files carry.</summary>
    public string Add(string repoId, string revision, Dictionary<string, byte[]> files, bool branch = true)
    {
        var commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(repoId + "@" + revision)));
        if (!repos.TryGetValue(repoId, out var revisions)) repos[repoId] = revisions = [];
        revisions.RemoveAll(r => r.Revision == revision);
        revisions.Add((revision, branch, 1_700_000_000 + revisions.Count, commit, files));
        return commit;
    }

    protected override async Task HandleAsync(HttpListenerContext ctx, string path)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        const string prefix = "/api/v1/models/";
        if (!path.StartsWith(prefix)) { res.StatusCode = 404; res.Close(); return; }
        var parts = path[prefix.Length..].Split('/');
        var repoId = parts[0] + "/" + parts[1];
        var action = string.Join('/', parts[2..]);
        if (!repos.TryGetValue(repoId, out var revisions))
        {
            await Json(res, new { Code = 10010205001, Message = "model not exists", Success = false }, 404);
            return;
        }
        if (Gated.Contains(repoId) && req.Cookies["m_session_id"]?.Value != GoodToken)
        {
            await Json(res, new { Code = 10010205401, Message = "unauthorized", Success = false }, 401);
            return;
        }
        if (action == "revisions")
        {
            object Detail((string Revision, bool Branch, long CreatedAt, string Commit, Dictionary<string, byte[]> Files) r) => new { r.Revision, r.CreatedAt };
            await Json(res, new
            {
                Code = 200, Success = true,
                Data = new { RevisionMap = new { Branches = revisions.Where(r => r.Branch).Select(Detail), Tags = revisions.Where(r => !r.Branch).Select(Detail) } },
            });
            return;
        }
        var wanted = req.QueryString["Revision"] ?? "master";
        var rev = revisions.FirstOrDefault(r => r.Revision == wanted);
        if (rev.Files is null) { await Json(res, new { Code = 10010205404, Message = $"revision {wanted} not found", Success = false }); return; }
        if (action == "repo/files")
        {
            var folders = rev.Files.Keys.Where(f => f.Contains('/')).Select(f => f[..f.LastIndexOf('/')]).Distinct();
            var files = rev.Files.Select(f => (object)new { Name = f.Key.Split('/')[^1], Path = f.Key, Type = "blob", Size = f.Value.Length, Sha256 = Sha256(f.Value), Revision = rev.Commit })
                .Concat(folders.Select(d => (object)new { Name = d, Path = d, Type = "tree", Size = 0, Sha256 = (string?)null, Revision = rev.Commit }))
                .Append(new { Name = ".gitattributes", Path = ".gitattributes", Type = "blob", Size = 3, Sha256 = "x", Revision = rev.Commit });
            await Json(res, new { Code = 200, Success = true, Data = new { Files = files } });
            return;
        }
        if (action == "repo")
        {
            var file = req.QueryString["FilePath"] ?? "";
            if (!rev.Files.TryGetValue(file, out var bytes)) { await Json(res, new { Code = 10010205404, Message = "file not found", Success = false }, 404); return; }
            if (IsLfs(file))
            {
                res.StatusCode = 302;
                res.RedirectLocation = OnCdn(file, bytes);
                res.Close();
                return;
            }
            await ServeBytes(ctx, file, Corrupt.Contains(file) ? [.. bytes.Take(bytes.Length - 1), (byte)(bytes[^1] ^ 0xFF)] : bytes);
            return;
        }
        res.StatusCode = 404;
        res.Close();
    }
}
